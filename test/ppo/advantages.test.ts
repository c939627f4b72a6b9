import { applyMask, explainedVariance, gae, maskedMean, maskedVar, whiten, whitenAdvantages } from '../../src/ppo/advantages.js';

const close = (actual: number[][], expected: number[][], digits = 9): void => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => row.forEach((v, t) => expect(v).toBeCloseTo(expected[i]![t]!, digits)));
};

describe('masked statistics', () => {
  const values = [[1, 2, 3], [4, 5, 6]];
  const mask = [[1, 1, 0], [1, 0, 0]];

  test('maskedMean averages only the masked elements: (1 + 2 + 4) / 3', () => {
    expect(maskedMean(values, mask)).toBeCloseTo(7 / 3, 12);
  });

  test('maskedVar: Σ(x − 7/3)² = 14/3; biased 14/9, unbiased (× 3/2) 7/3', () => {
    expect(maskedVar(values, mask, false)).toBeCloseTo(14 / 9, 12);
    expect(maskedVar(values, mask)).toBeCloseTo(7 / 3, 12);
  });

  test('an empty mask or a single element throws instead of dividing by zero', () => {
    expect(() => maskedMean(values, [[0, 0, 0], [0, 0, 0]])).toThrow(/no element/);
    expect(() => maskedVar(values, [[1, 0, 0], [0, 0, 0]])).toThrow(/at least 2/);
  });

  test('whiten = (x − 7/3) / sqrt(7/3 + 1e-8); shiftMean false adds the mean back', () => {
    const w = whiten(values, mask);
    // sqrt(7/3) = 1.5275252; (1 − 7/3)/1.5275252 = −0.8728716, (2 − 7/3)/… = −0.2182179, (4 − 7/3)/… = 1.0910895
    expect(w[0]![0]).toBeCloseTo(-0.8728716, 6);
    expect(w[0]![1]).toBeCloseTo(-0.2182179, 6);
    expect(w[1]![0]).toBeCloseTo(1.0910895, 6);
    const kept = whiten(values, mask, { shiftMean: false });
    expect(kept[0]![0]).toBeCloseTo(-0.8728716 + 7 / 3, 6);
    expect(maskedMean(kept, mask)).toBeCloseTo(7 / 3, 9);
  });

  test('whitened advantages have masked mean 0, unbiased var 1, and 0 at padding', () => {
    const w = whitenAdvantages(values, mask);
    expect(maskedMean(w, mask)).toBeCloseTo(0, 9);
    expect(maskedVar(w, mask)).toBeCloseTo(1, 6);
    expect(w[0]![2]).toBe(0);
    expect(w[1]![1]).toBe(0);
  });

  test('applyMask zeroes padding', () => {
    expect(applyMask(values, mask)).toEqual([[1, 2, 0], [4, 0, 0]]);
  });
});

describe('gae', () => {
  // Padding positions carry junk (9) that must be ignored.
  const rewards = [[0.1, -0.2, 1.0, 9], [0, 2, 9, 9]];
  const values = [[0.5, 0.4, 0.3, 9], [1, 1, 9, 9]];
  const mask = [[1, 1, 1, 0], [1, 1, 0, 0]];

  test('γ = 0.9, λ = 0.8 by hand', () => {
    // row 0: δ2 = 1 − 0.3 = 0.7, A2 = 0.7
    //        δ1 = −0.2 + 0.9·0.3 − 0.4 = −0.33, A1 = −0.33 + 0.72·0.7 = 0.174
    //        δ0 = 0.1 + 0.9·0.4 − 0.5 = −0.04,  A0 = −0.04 + 0.72·0.174 = 0.08528
    // row 1: δ1 = 2 − 1 = 1, A1 = 1;  δ0 = 0.9·1 − 1 = −0.1, A0 = −0.1 + 0.72 = 0.62
    const { advantages, returns } = gae(rewards, values, mask, 0.9, 0.8);
    close(advantages, [[0.08528, 0.174, 0.7, 0], [0.62, 1, 0, 0]]);
    close(returns, [[0.58528, 0.574, 1.0, 0], [1.62, 2, 0, 0]]);
  });

  test('γ = λ = 1: returns are the Monte-Carlo sums of future rewards', () => {
    const { advantages, returns } = gae(rewards, values, mask, 1, 1);
    close(returns, [[0.9, 0.8, 1.0, 0], [2, 2, 0, 0]]);
    close(advantages, [[0.4, 0.4, 0.7, 0], [1, 1, 0, 0]]);
  });

  test('λ = 0: one-step TD errors', () => {
    const { advantages } = gae(rewards, values, mask, 0.9, 0);
    close(advantages, [[-0.04, -0.33, 0.7, 0], [-0.1, 1, 0, 0]]);
  });
});

describe('explainedVariance', () => {
  const target = [[1, 2, 3, 100]];
  const mask = [[1, 1, 1, 0]];
  test('1 for a perfect critic, 0 for a constant, 0.75 for half the spread', () => {
    expect(explainedVariance([[1, 2, 3, 0]], target, mask)).toBeCloseTo(1, 12);
    expect(explainedVariance([[2, 2, 2, 0]], target, mask)).toBeCloseTo(0, 12);
    // residual (−0.5, 0, 0.5): var 1/6; target var 2/3 → 1 − 1/4
    expect(explainedVariance([[1.5, 2, 2.5, 0]], target, mask)).toBeCloseTo(0.75, 12);
  });
  test('NaN when the target is constant', () => {
    expect(explainedVariance([[0, 0]], [[1, 1]], [[1, 1]])).toBeNaN();
  });
});
