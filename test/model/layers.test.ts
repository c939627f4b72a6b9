import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import {
  applyRope,
  attentionBias,
  MASKED_SCORE,
  positionIdsFromMask,
  positionsFromMaskRow,
  rmsNorm,
  ropeInvFreq,
  ropeTables,
  rotateHalfMatrix,
  silu,
  softmaxLastAxis,
  swiglu,
} from '../../src/model/layers.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const arr = (t: tf.Tensor) => Array.from(t.dataSync());

test('rmsNorm of [3, 4] with eps 0 and weight [1, 2]: rms = sqrt(12.5)', () => {
  tf.tidy(() => {
    const out = arr(rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2]), 0));
    const r = Math.sqrt(12.5);
    expect(out[0]).toBeCloseTo(3 / r, 6);
    expect(out[1]).toBeCloseTo((2 * 4) / r, 6);
  });
});

test('rotate_half via the signed permutation: [1, 2, 3, 4] → [-3, -4, 1, 2]', () => {
  tf.tidy(() => {
    expect(arr(tf.matMul(tf.tensor2d([[1, 2, 3, 4]]), rotateHalfMatrix(4)))).toEqual([-3, -4, 1, 2]);
  });
});

test('RoPE inverse frequencies and the rotation at position 1 (hand-computed, d = 4, theta = 100)', () => {
  expect(Array.from(ropeInvFreq(4, 100))).toEqual([1, Math.fround(0.1)]);
  tf.tidy(() => {
    // One head, x = [1, 0, 0, 0] at position 1: out = [cos 1, 0, sin 1, 0].
    const { cos, sin } = ropeTables(tf.tensor2d([[1]], undefined, 'int32'), ropeInvFreq(4, 100), 1);
    const out = arr(applyRope(tf.tensor3d([[[1, 0, 0, 0]]]), cos, sin, rotateHalfMatrix(4)));
    expect(out[0]).toBeCloseTo(Math.cos(1), 6);
    expect(out[1]).toBeCloseTo(0, 6);
    expect(out[2]).toBeCloseTo(Math.sin(1), 6);
    expect(out[3]).toBeCloseTo(0, 6);
    // Two heads share the table: [B, T, 2·d].
    expect(ropeTables(tf.tensor2d([[0, 3]], undefined, 'int32'), ropeInvFreq(4, 100), 2).cos.shape).toEqual([1, 2, 8]);
  });
});

test('position ids from the mask: cumsum − 1, pads at 0, last T columns', () => {
  tf.tidy(() => {
    const mask = tf.tensor2d([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], undefined, 'int32');
    expect(positionIdsFromMask(mask, 5).arraySync()).toEqual([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]);
    expect(positionIdsFromMask(mask, 1).arraySync()).toEqual([[2], [4]]);
  });
  expect(positionsFromMaskRow([0, 1, 1, 0, 1])).toEqual([0, 0, 1, 1, 2]);
});

test('attention bias: causal with a past, pads masked, laid out [B, kvHeads, groups·T, S]', () => {
  tf.tidy(() => {
    // T = 2 new queries after 1 past position; key 0 is padding.
    const bias = attentionBias(tf.tensor2d([[0, 1, 1]], undefined, 'int32'), 1, 2, 1, 1, 2);
    expect(bias.shape).toEqual([1, 1, 4, 3]);
    const m = MASKED_SCORE;
    const row0 = [m, 0, m]; // query at absolute 1 sees keys 0..1, key 0 is a pad
    const row1 = [m, 0, 0];
    expect(bias.arraySync()).toEqual([[[row0, row1, row0, row1]]]); // repeated per query head of the group
  });
});

test('softmaxLastAxis (cpu fast path) equals tf.softmax', () => {
  tf.tidy(() => {
    const x = tf.tensor3d([[[1, 2, 3], [-1e9, 0, 5]], [[0, 0, 0], [100, 101, -3]]]);
    const a = arr(softmaxLastAxis(x));
    const b = arr(tf.softmax(x));
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-7);
  });
});

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

test('swiglu: value and gradients equal silu(gate) · up composed from tfjs ops', () => {
  tf.tidy(() => {
    const g = tf.tensor2d([[-3, -0.5, 0, 0.7], [2, 5, -1, 0.1]]);
    const u = tf.tensor2d([[1, -2, 3, 0.5], [-1, 0.25, 2, -4]]);
    const w = tf.tensor2d([[1, 2, -1, 0.5], [3, -2, 1, 1]]); // weights the outputs so dy is not all ones
    const fused = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swiglu(a, b), w)))([g, u]);
    const composed = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.mul(silu(a), b), w)))([g, u]);
    expect(maxAbsDiff(swiglu(g, u), tf.mul(silu(g), u))).toBe(0);
    expect(maxAbsDiff(fused[0]!, composed[0]!)).toBeLessThan(1e-6);
    expect(maxAbsDiff(fused[1]!, composed[1]!)).toBeLessThan(1e-6);
  });
});

test('applyRope: gradient in x equals that of x · cos + rotate_half(x) · sin composed from tfjs ops', () => {
  tf.tidy(() => {
    const { cos, sin } = ropeTables(tf.tensor2d([[0, 1, 5]], undefined, 'int32'), ropeInvFreq(4, 100), 2);
    const r = rotateHalfMatrix(4);
    const x = tf.tensor3d([[[1, 2, 3, 4, 5, 6, 7, 8], [-1, 0.5, 2, -3, 1, 1, 0, 2], [0.3, -0.2, 0.1, 4, -5, 2, 1, -1]]]);
    const w = tf.tensor3d([[[1, -1, 2, 0.5, 3, 1, -2, 1], [2, 1, 1, -1, 0, 1, 3, 1], [1, 1, -1, 2, 1, -3, 1, 0.5]]]);
    const composed = (v: tf.Tensor) => tf.add(tf.mul(v, cos), tf.mul(tf.reshape(tf.matMul(tf.reshape(v, [-1, 4]), r), v.shape), sin));
    expect(maxAbsDiff(applyRope(x, cos, sin, r), composed(x))).toBe(0);
    const fused = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(applyRope(v, cos, sin, r), w)))(x);
    const reference = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(composed(v), w)))(x);
    expect(maxAbsDiff(fused, reference)).toBeLessThan(1e-6);
  });
});

test('ropeTables scale multiplies both tables (the query side carries 1/√d)', () => {
  tf.tidy(() => {
    const grid = { batch: 1, len: 2, values: [3, 7] };
    const plain = ropeTables(grid, ropeInvFreq(4, 100), 1);
    const scaled = ropeTables(grid, ropeInvFreq(4, 100), 1, 0.5);
    expect(maxAbsDiff(scaled.cos, tf.mul(plain.cos, 0.5))).toBeLessThan(1e-7);
    expect(maxAbsDiff(scaled.sin, tf.mul(plain.sin, 0.5))).toBeLessThan(1e-7);
    expect(arr(plain.cos)[0]).toBeCloseTo(Math.cos(3), 6);
  });
});
