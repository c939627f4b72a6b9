import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import {
  MARGIN_TABLE,
  accuracyByStrength,
  bradleyTerryLoss,
  bradleyTerryLossSum,
  bradleyTerryLossValue,
  pairMargin,
  pairStats,
  rewardStats,
} from '../../src/reward/loss.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const LN2 = Math.log(2); // −log σ(0)
const SOFTPLUS_1 = Math.log(1 + Math.E); // −log σ(−1) = 1.3132616875…

function lossOf(c: number[], r: number[], m: number[], coef: number): number {
  return tf.tidy(() => bradleyTerryLoss(tf.tensor1d(c), tf.tensor1d(r), tf.tensor1d(m), coef).dataSync()[0]!);
}

describe('pairMargin (Llama 2 Table 27)', () => {
  test('small and large by strength, none is zero, column reads the margin', () => {
    expect(MARGIN_TABLE.small).toEqual({ significantly_better: 1, better: 2 / 3, slightly_better: 1 / 3, negligibly_better: 0 });
    expect(MARGIN_TABLE.large).toEqual({ significantly_better: 3, better: 2, slightly_better: 1, negligibly_better: 0 });
    expect(pairMargin({ strength: 'better' }, 'large')).toBe(2);
    expect(pairMargin({ strength: 'slightly_better' }, 'small')).toBeCloseTo(1 / 3, 12);
    expect(pairMargin({ strength: 'significantly_better', margin: 7 }, 'none')).toBe(0);
    expect(pairMargin({ strength: 'better', margin: 0.25 }, 'column')).toBe(0.25);
  });

  test('null when the row lacks what the kind needs', () => {
    expect(pairMargin({ margin: 1 }, 'small')).toBeNull();
    expect(pairMargin({ strength: 'better' }, 'column')).toBeNull();
  });
});

describe('bradleyTerryLoss', () => {
  test('no margin, no centering: mean of −log σ(r_c − r_r)', () => {
    // diffs 0 and −1 → (ln 2 + ln(1 + e)) / 2 = 1.00320443…
    expect(lossOf([1, 0], [1, 1], [0, 0], 0)).toBeCloseTo((LN2 + SOFTPLUS_1) / 2, 6);
    expect((LN2 + SOFTPLUS_1) / 2).toBeCloseTo(1.0032044340, 9);
  });

  test('the margin is subtracted from the reward difference', () => {
    // r_c − r_r − m: 2 − 1 − 1 = 0 and 0 − 1 − 0 = −1, the same two terms as above.
    expect(lossOf([2, 0], [1, 1], [1, 0], 0)).toBeCloseTo(1.0032044340, 6);
    // A large margin on a well-separated pair: 4 − 0 − 3 = 1 → −log σ(1) = 0.31326168…
    expect(lossOf([4], [0], [3], 0)).toBeCloseTo(0.3132616875, 6);
  });

  test('centering adds c · mean((r_c + r_r)²)', () => {
    // (2 + 1)² = 9, (0 + 1)² = 1 → mean 5; with c = 0.01 → + 0.05.
    expect(lossOf([2, 0], [1, 1], [1, 0], 0.01)).toBeCloseTo(1.0532044340, 6);
  });

  test('the sum form is B times the mean, and the number version agrees', () => {
    const c = [0.3, -1.2, 2.5], r = [0.1, 0.4, -0.5], m = [1, 2 / 3, 0];
    const sum = tf.tidy(() => bradleyTerryLossSum(tf.tensor1d(c), tf.tensor1d(r), tf.tensor1d(m), 0.05).dataSync()[0]!);
    const mean = lossOf(c, r, m, 0.05);
    expect(sum).toBeCloseTo(3 * mean, 5);
    expect(bradleyTerryLossValue(c, r, m, 0.05)).toBeCloseTo(mean, 6);
  });

  test('stable for large reward gaps (no Infinity, no NaN)', () => {
    expect(lossOf([200], [0], [0], 0)).toBeCloseTo(0, 6);
    expect(lossOf([0], [200], [0], 0)).toBeCloseTo(200, 3);
  });

  test('gradient: d/dr_c = −σ(−x)/B + 2c(r_c + r_r)/B', () => {
    const c = tf.tensor1d([2, 0]), r = tf.tensor1d([1, 1]), m = tf.tensor1d([1, 0]);
    const g = tf.grad((x: tf.Tensor) => bradleyTerryLoss(x as tf.Tensor1D, r, m, 0.01))(c);
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    // pair 0: x = 0 → −0.5/2 + 2·0.01·3/2 = −0.22; pair 1: x = −1 → −σ(1)/2 + 2·0.01·1/2 = −0.355529…
    const got = Array.from(g.dataSync());
    expect(got[0]).toBeCloseTo(-0.25 + 0.03, 6);
    expect(got[1]).toBeCloseTo(-sig(1) / 2 + 0.01, 6);
    tf.dispose([c, r, m, g]);
  });

  test('leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    lossOf([1, 2], [0, 3], [0, 1], 0.1);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('metrics', () => {
  test('pairStats: accuracy (ties wrong), mean margin, chosen/rejected means', () => {
    const s = pairStats([1, 2, 0, 5], [0, 3, 0, 1]);
    expect(s).toEqual({ pairs: 4, accuracy: 0.5, margin: (1 - 1 + 0 + 4) / 4, chosenMean: 2, rejectedMean: 1 });
  });

  test('accuracyByStrength groups by Table 27 level', () => {
    const out = accuracyByStrength([1, 0, 2, 3, 1], [0, 1, 1, 4, 0], ['better', 'better', 'significantly_better', 'negligibly_better', undefined]);
    expect(out.all).toBeCloseTo(3 / 5, 12);
    expect(out.byStrength).toEqual({
      significantly_better: { accuracy: 1, pairs: 1 },
      better: { accuracy: 0.5, pairs: 2 },
      negligibly_better: { accuracy: 0, pairs: 1 },
    });
  });

  test('rewardStats: mean and population std', () => {
    expect(rewardStats([1, 3, 5, 7])).toEqual({ mean: 4, std: Math.sqrt(5), count: 4 });
    expect(rewardStats([])).toEqual({ mean: 0, std: 1, count: 0 });
  });
});
