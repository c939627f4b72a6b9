import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { countTargets, maskedCrossEntropyMean, maskedCrossEntropySum, shiftLabels } from '../../src/training/loss.js';
import { expectSameOutputs, onBoth, randomValues } from '../helpers/engine.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('masked cross-entropy', () => {
  test('sum and count against hand-computed log-softmax values, −100 ignored', () => {
    const logits = tf.tensor3d([[[1, 2, 3], [0, 0, 0], [2, 0, -1]]]); // [1, 3, 3]
    const labels = tf.tensor2d([[2, -100, 0]], [1, 3], 'int32');
    const before = tf.memory().numTensors;
    const { sum, count } = maskedCrossEntropySum(logits, labels);
    expect(count).toBe(2);
    // −log softmax([1,2,3])[2] = 0.4076059644, −log softmax([2,0,−1])[0] = 0.1698460196
    expect(sum.dataSync()[0]).toBeCloseTo(0.5774519840006662, 6);
    sum.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const mean = maskedCrossEntropyMean(logits, labels);
    expect(mean.dataSync()[0]).toBeCloseTo(0.2887259920003331, 6);
    mean.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
  test('stable for large logits', () => {
    const { sum } = maskedCrossEntropySum(tf.tensor3d([[[1000, 0]]]), tf.tensor2d([[1]], [1, 1], 'int32'));
    expect(sum.dataSync()[0]).toBeCloseTo(1000, 3);
  });
  test('gradient is softmax − onehot on scored positions, zero on ignored ones', () => {
    const logits = tf.tensor3d([[[0, 0], [5, -5]]]);
    const labels = tf.tensor2d([[1, -100]], [1, 2], 'int32');
    const g = tf.grad((x: tf.Tensor) => maskedCrossEntropySum(x, labels).sum)(logits);
    expect(Array.from(g.dataSync(), (v) => v + 0)).toEqual([0.5, -0.5, 0, 0]); // +0 folds −0
  });
  test('bad labels are reported; label helpers', () => {
    expect(() => maskedCrossEntropySum(tf.zeros([1, 1, 3]), tf.tensor2d([[3]], [1, 1], 'int32'))).toThrow(/label 3/);
    expect(shiftLabels([[5, 6, 7]])).toEqual([[6, 7, -100]]);
    expect(countTargets([[1, -100, 2], [-100, -100, 3]])).toBe(3);
  });
});

describe('maskedCrossEntropySum on wasm (softmax-kernel logsumexp)', () => {
  test('value and gradient match cpu, also for a dominating logit and for equal logits', async () => {
    const [b, t, v] = [2, 5, 300];
    const base = randomValues(7, [b, t, v]).map((x) => 4 * x);
    base[3 * v + 17] = 80; // row 3: one logit far above the rest (logsumexp ≈ that logit)
    base.fill(0.25, 7 * v, 8 * v); // row 7: all equal (logsumexp = 0.25 + log V)
    const labels = [[1, 17, 5, -100, 299], [0, 2, 3, 4, -100]];
    const fn = () => {
      const logits = tf.tensor3d(base, [b, t, v]);
      const y = tf.tensor2d(labels, undefined, 'int32');
      const g = tf.grad((x: tf.Tensor) => maskedCrossEntropySum(x, y).sum)(logits);
      return [maskedCrossEntropySum(logits, y).sum, g];
    };
    const [cpu, wasm] = await onBoth(fn);
    expectSameOutputs(cpu, wasm, 1e-5);
    // Against float64 by hand.
    let want = 0;
    labels.flat().forEach((y, i) => {
      if (y === -100) return;
      const row = Array.from(base.subarray(i * v, (i + 1) * v));
      const max = Math.max(...row);
      want += max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)) - row[y]!;
    });
    expect(Math.abs(cpu[0]![0]! - want) / want).toBeLessThan(1e-6);
    expect(Math.abs(wasm[0]![0]! - want) / want).toBeLessThan(1e-6);
    await initEngine({ backend: 'cpu' });
  });
});
