import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { countTargets, maskedCrossEntropyMean, maskedCrossEntropySum, shiftLabels } from '../../src/training/loss.js';

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
