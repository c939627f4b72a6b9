import {
  AdaptiveKlController, adaptiveKlStep, FixedKlController, klControllerFromState, klPerToken, klToken,
} from '../../src/ppo/kl.js';

describe('KL estimators', () => {
  // log π − log π_ref = +0.5 and −0.5
  test.each([
    ['k1', 0.5, -0.5],
    // k3 = e^{logr} − 1 − logr, logr = ref − logp: e^{−0.5} − 0.5 = 0.1065307; e^{0.5} − 1.5 = 0.1487213
    ['k3', 0.1065307, 0.1487213],
    ['abs', 0.5, 0.5],
    ['mse', 0.125, 0.125],
  ] as const)('%s', (estimator, plus, minus) => {
    expect(klToken(-1.0, -1.5, estimator)).toBeCloseTo(plus, 7);
    expect(klToken(-2.0, -1.5, estimator)).toBeCloseTo(minus, 7);
    expect(klToken(-1.25, -1.25, estimator)).toBe(0);
  });

  test('klPerToken is 0 at padding', () => {
    expect(klPerToken([[-1, -2, -7]], [[-1.5, -1.5, 0]], [[1, 1, 0]], 'k1')).toEqual([[0.5, -0.5, 0]]);
  });
});

describe('KL controllers', () => {
  test('adaptive: one update above and one below target, by hand', () => {
    // KL 9 vs target 6: error clip(0.5) = 0.2; β = 0.1·(1 + 0.2·64/10000) = 0.100128
    expect(adaptiveKlStep(0.1, 9, 6, 10000, 64)).toBeCloseTo(0.100128, 12);
    // KL 5.4: error −0.1; β = 0.1·(1 − 0.1·64/10000) = 0.099936
    expect(adaptiveKlStep(0.1, 5.4, 6, 10000, 64)).toBeCloseTo(0.099936, 12);
    // far below target: error clipped at −0.2
    expect(adaptiveKlStep(0.1, 0, 6, 10000, 64)).toBeCloseTo(0.1 * (1 - 0.2 * 64 / 10000), 12);
  });

  test('adaptive controller updates and round-trips its state', () => {
    const c = new AdaptiveKlController(0.1, 6, 10000);
    c.update(9, 64);
    expect(c.value).toBeCloseTo(0.100128, 12);
    const restored = klControllerFromState(JSON.parse(JSON.stringify(c.exportState())));
    restored.update(5.4, 64);
    c.update(5.4, 64);
    expect(restored.value).toBe(c.value);
    expect(restored.value).toBeCloseTo(0.100128 * 0.99936, 12);
  });

  test('fixed controller never moves', () => {
    const c = new FixedKlController(0.05);
    c.update(100, 64);
    expect(c.value).toBe(0.05);
    expect(klControllerFromState(c.exportState()).value).toBe(0.05);
  });
});
