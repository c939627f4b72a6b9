/**
 * Gradients of every op a Llama model and its losses use, on the patched wasm backend vs cpu.
 * Each case takes `sum(f(inputs) · w)` with random weights `w`, so the upstream gradient is
 * non-trivial, and compares the value and all input gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { onBoth, expectSameOutputs, randomValues } from '../helpers/engine.js';

interface OpCase {
  name: string;
  shapes: number[][];
  /** Values for input i; default N(0,1). */
  values?: (i: number, size: number) => Float32Array;
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

const positive = (i: number, size: number): Float32Array =>
  randomValues(100 + i, [size]).map((v) => 0.5 + Math.abs(v));

const CASES: OpCase[] = [
  { name: 'gather (embedding)', shapes: [[11, 6]], f: (x) => tf.gather(x, tf.tensor1d([3, 0, 3, 10, 7, 3], 'int32')) },
  { name: 'gather axis 1', shapes: [[4, 9, 3]], f: (x) => tf.gather(x, tf.tensor1d([8, 1, 1, 2], 'int32'), 1) },
  { name: 'softmax', shapes: [[3, 4, 7]], f: (x) => tf.softmax(x) },
  { name: 'logSoftmax', shapes: [[5, 13]], f: (x) => tf.logSoftmax(x) },
  { name: 'logSumExp', shapes: [[5, 13]], f: (x) => tf.logSumExp(x, -1) },
  { name: 'rsqrt', shapes: [[4, 6]], values: positive, f: (x) => tf.rsqrt(x) },
  { name: 'sqrt', shapes: [[4, 6]], values: positive, f: (x) => tf.sqrt(x) },
  { name: 'sigmoid', shapes: [[4, 6]], f: (x) => tf.sigmoid(x) },
  { name: 'silu x·sigmoid(x)', shapes: [[4, 6]], f: (x) => tf.mul(x, tf.sigmoid(x)) },
  { name: 'tanh', shapes: [[4, 6]], f: (x) => tf.tanh(x) },
  { name: 'relu', shapes: [[4, 6]], f: (x) => tf.relu(x) },
  { name: 'mul broadcast', shapes: [[2, 3, 4], [4]], f: (x, y) => tf.mul(x, y) },
  { name: 'div broadcast', shapes: [[2, 3, 4], [3, 1]], values: (i, n) => (i === 1 ? positive(i, n) : randomValues(i, [n])), f: (x, y) => tf.div(x, y) },
  { name: 'add / sub broadcast', shapes: [[2, 3, 4], [1, 3, 4]], f: (x, y) => tf.sub(tf.add(x, y), tf.mul(y, y)) },
  { name: 'sum / mean axes', shapes: [[3, 4, 5]], f: (x) => tf.add(tf.sum(x, -1, true), tf.mean(x, [0, 2], true)) },
  { name: 'max reduction', shapes: [[3, 7]], f: (x) => tf.max(x, -1) },
  { name: 'maximum / minimum', shapes: [[3, 7], [3, 7]], f: (x, y) => tf.add(tf.maximum(x, y), tf.minimum(x, 0.1)) },
  { name: 'clipByValue', shapes: [[3, 7]], f: (x) => tf.clipByValue(x, -0.5, 0.5) },
  { name: 'abs / neg', shapes: [[3, 7]], f: (x) => tf.neg(tf.abs(x)) },
  { name: 'exp / log', shapes: [[3, 7]], values: positive, f: (x) => tf.add(tf.exp(tf.mul(x, 0.3)), tf.log(x)) },
  { name: 'square / pow', shapes: [[3, 7]], values: positive, f: (x) => tf.add(tf.square(x), tf.pow(x, 1.5)) },
  { name: 'sin / cos (rotary)', shapes: [[3, 7]], f: (x) => tf.mul(tf.sin(x), tf.cos(x)) },
  { name: 'concat', shapes: [[2, 3], [2, 5]], f: (x, y) => tf.concat([x, y], 1) },
  { name: 'split + stack', shapes: [[4, 6]], f: (x) => { const [p, q] = tf.split(x, 2, 1); return tf.stack([q!, p!], 0); } },
  { name: 'slice', shapes: [[4, 6, 3]], f: (x) => tf.slice(x, [1, 2, 0], [2, 3, -1]) },
  { name: 'stridedSlice', shapes: [[6, 8]], f: (x) => tf.stridedSlice(x, [1, 0], [5, 8], [2, 3]) },
  { name: 'transpose + reshape', shapes: [[2, 3, 4, 5]], f: (x) => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [8, 15]) },
  { name: 'expandDims / squeeze', shapes: [[3, 1, 4]], f: (x) => tf.expandDims(tf.squeeze(x, [1]), 0) },
  { name: 'where (causal mask)', shapes: [[5, 5]], f: (x) => tf.where(tf.greaterEqual(tf.range(0, 5).reshape([5, 1]), tf.range(0, 5).reshape([1, 5])), x, tf.fill([5, 5], -1e9)) },
  { name: 'cumsum', shapes: [[3, 6]], f: (x) => tf.cumsum(x, 1) },
  { name: 'oneHot · x (cross-entropy pick)', shapes: [[4, 7]], f: (x) => tf.sum(tf.mul(tf.oneHot(tf.tensor1d([1, 6, 0, 3], 'int32'), 7), tf.logSoftmax(x)), -1) },
  { name: 'tile', shapes: [[2, 3]], f: (x) => tf.tile(x, [3, 2]) },
  { name: 'pad', shapes: [[2, 3]], f: (x) => tf.pad(x, [[1, 0], [0, 2]]) },
  { name: 'matMul transposeB', shapes: [[5, 6], [7, 6]], f: (x, y) => tf.matMul(x, y, false, true) },
  { name: 'batched matMul (attention)', shapes: [[2, 3, 5, 4], [2, 3, 5, 4]], f: (q, k) => tf.matMul(q, k, false, true) },
  { name: 'rank-3 x rank-2 matMul', shapes: [[2, 5, 4], [4, 6]], f: (x, w) => tf.matMul(x, w) },
  { name: 'matMul batch-1 broadcast', shapes: [[3, 5, 4], [1, 4, 6]], f: (x, w) => tf.matMul(x, w) },
  { name: 'matMul transposeA (dW shape)', shapes: [[6, 5], [6, 3]], f: (x, y) => tf.matMul(x, y, true, false) },
  { name: 'unsortedSegmentSum', shapes: [[6, 3]], f: (x) => tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 4, -1, 0], 'int32'), 5) },
];

describe('op gradients, wasm vs cpu', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const inputs = c.shapes.map((shape, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return c.values?.(i, size) ?? randomValues(i + 1, [size]);
    });
    const [cpu, wasm] = await onBoth(() => {
      const xs = inputs.map((v, i) => tf.tensor(v, c.shapes[i]));
      const value = c.f(...xs);
      const w = tf.tensor(randomValues(99, [value.size]), value.shape);
      const loss = (...ys: tf.Tensor[]) => tf.sum(tf.mul(c.f(...ys), w));
      return [value, ...tf.grads(loss)(xs)];
    });
    expectSameOutputs(cpu, wasm, 1e-5);
  });
});
