import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { entropyFromLogits, maskedMeanTensor, policyLoss, valueLoss } from '../../src/ppo/losses.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const t2 = (rows: number[][]): tf.Tensor2D => tf.tensor2d(rows);

describe('policyLoss', () => {
  // Tokens: ρ = 1.5 with A = 1 (clipped at 1 + ε = 1.2), ρ = 0.5 with A = 1 (unclipped is the max),
  // ρ = 1.5 with A = −1 (unclipped), and a padded token with wild values.
  const oldLp = [[-1, -1, -1, -1]];
  const newLp = [[-1 + Math.log(1.5), -1 + Math.log(0.5), -1 + Math.log(1.5), 50]];
  const adv = [[1, 1, -1, 1000]];
  const mask = [[1, 1, 1, 0]];

  test('clipped surrogate, clipfrac, approx-KL and mean ratio by hand', () => {
    const before = tf.memory().numTensors;
    const out = tf.tidy(() => {
      const r = policyLoss({ newLogprobs: t2(newLp), oldLogprobs: t2(oldLp), advantages: t2(adv), mask: t2(mask), clipRange: 0.2 });
      return [r.loss, r.clipfrac, r.approxKl, r.ratioMean].map((s) => s.dataSync()[0]!);
    });
    // max(−1.5, −1.2) = −1.2;  max(−0.5, −0.8) = −0.5;  max(1.5, 1.2) = 1.5  → mean −0.2/3
    expect(out[0]).toBeCloseTo(-0.2 / 3, 6);
    expect(out[1]).toBeCloseTo(1 / 3, 6);
    // ½·mean(ln²1.5, ln²0.5, ln²1.5) = ½·(0.1644020·2 + 0.4804530)/3
    expect(out[2]).toBeCloseTo(0.1348762, 6);
    expect(out[3]).toBeCloseTo(3.5 / 3, 6);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('no gradient flows through the clipped token', () => {
    const grad = tf.tidy(() => {
      const g = tf.grad((lp: tf.Tensor) =>
        policyLoss({ newLogprobs: lp, oldLogprobs: t2(oldLp), advantages: t2(adv), mask: t2(mask), clipRange: 0.2 }).loss);
      return Array.from(g(t2(newLp)).dataSync());
    });
    // d/dlogp of −A·ρ/3 = −A·ρ/3: token 1 clipped → 0; token 2 → −0.5/3; token 3 → 1.5/3; padding 0
    [0, -0.5 / 3, 0.5, 0].forEach((g, i) => expect(grad[i]).toBeCloseTo(g, 6));
  });

  test('equal log-probs give ratio 1, loss −mean(A), zero clipfrac and approx-KL', () => {
    const out = tf.tidy(() => {
      const r = policyLoss({ newLogprobs: t2(oldLp), oldLogprobs: t2(oldLp), advantages: t2([[1, 2, 3, 4]]), mask: t2(mask), clipRange: 0.2 });
      return [r.loss, r.clipfrac, r.approxKl, r.ratioMean].map((s) => s.dataSync()[0]!);
    });
    expect(out).toEqual([-2, 0, 0, 1]);
  });
});

describe('valueLoss', () => {
  test('value clipping by hand', () => {
    // tok 1: V 1.5, V_old 1 → clip 1.2; errors (1.5−2)² = 0.25, (1.2−2)² = 0.64 → 0.64 (clipped larger)
    // tok 2: V = V_old = 0, R 1 → 1;  tok 3: V = V_old = 2, R 1 → 1;  tok 4 padded
    // loss = ½·(0.64 + 1 + 1)/3 = 0.44, clipfrac 1/3
    const out = tf.tidy(() => {
      const r = valueLoss({
        values: t2([[1.5, 0, 2, 99]]), oldValues: t2([[1, 0, 2, 0]]), returns: t2([[2, 1, 1, -99]]),
        mask: t2([[1, 1, 1, 0]]), clipRangeValue: 0.2,
      });
      return [r.loss, r.clipfrac].map((s) => s.dataSync()[0]!);
    });
    expect(out[0]).toBeCloseTo(0.44, 6);
    expect(out[1]).toBeCloseTo(1 / 3, 6);
  });
});

describe('entropy and masked mean', () => {
  test('entropy of [0, 0] is ln 2; of [0, ln 3] (p = ¼, ¾) is 0.5623351', () => {
    const h = tf.tidy(() => Array.from(entropyFromLogits(tf.tensor3d([[[0, 0], [0, Math.log(3)]]])).dataSync()));
    expect(h[0]).toBeCloseTo(Math.LN2, 6);
    expect(h[1]).toBeCloseTo(0.5623351, 6);
  });
  test('maskedMeanTensor', () => {
    const m = tf.tidy(() => maskedMeanTensor(t2([[1, 2, 3], [4, 5, 6]]), t2([[1, 1, 0], [1, 0, 0]])).dataSync()[0]);
    expect(m).toBeCloseTo(7 / 3, 6);
  });
});
