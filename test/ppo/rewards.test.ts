import { lastTokenIndex, processScores, shapeRewards } from '../../src/ppo/rewards.js';

describe('processScores', () => {
  test('normalise → clip → missing-EOS penalty', () => {
    const opts = { normalize: { mean: 1, std: 2 }, clip: 1.5, missingEosPenalty: 1 };
    // 5 → 2 → 1.5 (has EOS);  5 → 2 → 1.5 → 0.5 (no EOS);  −3 → −2 → −1.5
    expect(processScores([5, 5, -3], [true, false, true], opts)).toEqual([1.5, 0.5, -1.5]);
    expect(processScores([5, 0], [false, false])).toEqual([5, 0]);
  });
});

describe('shapeRewards', () => {
  const base = {
    scores: [2, -1],
    logprobs: [[-1, -2, -0.5, 0], [-1, 0, 0, 0]],
    refLogprobs: [[-1.5, -1.5, -0.5, 0], [-1.2, 0, 0, 0]],
    mask: [[1, 1, 1, 0], [1, 0, 0, 0]],
    klCoef: 0.1,
  };

  test('k1: −β·KL per token, score added at the last response token', () => {
    const { rewards, kl, nonScoreReward } = shapeRewards({ ...base, estimator: 'k1' });
    // row 0: KL (0.5, −0.5, 0) → −β·KL (−0.05, 0.05, 0); score 2 at t = 2
    // row 1: KL 0.2 → −0.02; score −1 at t = 0
    kl.flat().forEach((v, i) => expect(v).toBeCloseTo([0.5, -0.5, 0, 0, 0.2, 0, 0, 0][i]!, 12));
    nonScoreReward.flat().forEach((v, i) => expect(v).toBeCloseTo([-0.05, 0.05, 0, 0, -0.02, 0, 0, 0][i]!, 12));
    rewards.flat().forEach((v, i) => expect(v).toBeCloseTo([-0.05, 0.05, 2, 0, -1.02, 0, 0, 0][i]!, 12));
  });

  test('whitenRewards rescales without shifting the mean, 0 at padding', () => {
    const { rewards } = shapeRewards({ ...base, estimator: 'k1', whitenRewards: true });
    // raw masked rewards (−0.05, 0.05, 2, −1.02): mean 0.245;
    // Σ(r − mean)² = 0.087025 + 0.038025 + 3.080025 + 1.600225 = 4.8053, unbiased var 4.8053/3 = 1.6017667
    // (2 − 0.245)/sqrt(1.6017667) + 0.245 = 1.6316840
    expect(rewards[0]![2]).toBeCloseTo(1.631684, 6);
    expect(rewards[0]![0]).toBeCloseTo((-0.05 - 0.245) / Math.sqrt(4.8053 / 3) + 0.245, 7);
    expect(rewards[0]![3]).toBe(0);
  });

  test('lastTokenIndex', () => {
    expect(lastTokenIndex([1, 1, 0])).toBe(1);
    expect(lastTokenIndex([0, 0])).toBe(-1);
  });
});
