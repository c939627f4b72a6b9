import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { clipCoefficient, clipGradNormInPlace, globalNorm } from '../../src/training/clip.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('clip by global norm', () => {
  test('returns the pre-clip norm and scales like torch (coef = max/(norm+1e-6))', () => {
    // norms 5 and 12 → global 13
    const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 4])], ['b', tf.tensor2d([[12]])]]);
    const before = tf.memory().numTensors;
    const norm = clipGradNormInPlace(grads, 1);
    expect(norm).toBeCloseTo(13, 5);
    expect(tf.memory().numTensors).toBe(before);
    const coef = 1 / (13 + 1e-6);
    const a = grads.get('a')!.dataSync();
    expect(a[0]).toBeCloseTo(3 * coef, 7);
    expect(a[1]).toBeCloseTo(4 * coef, 7);
    expect(globalNorm(grads.values())).toBeCloseTo(1, 5);
    grads.forEach((g) => g.dispose());
  });
  test('below the limit, or with clipping off, gradients are unchanged', () => {
    const g = tf.tensor1d([0.3, 0.4]);
    const grads = new Map([['a', g]]);
    expect(clipGradNormInPlace(grads, 1)).toBeCloseTo(0.5, 6);
    expect(grads.get('a')).toBe(g);
    expect(clipCoefficient(100, 0)).toBe(1);
    expect(clipCoefficient(100, Infinity)).toBe(1);
    g.dispose();
  });
  test('non-finite gradients give a non-finite norm', () => {
    const grads = new Map([['a', tf.tensor1d([1, NaN])], ['b', tf.tensor1d([1])]]);
    expect(Number.isNaN(clipGradNormInPlace(grads, 1))).toBe(true);
    expect(globalNorm([tf.tensor1d([Infinity])])).toBe(Infinity);
  });
});
