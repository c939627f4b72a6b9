/**
 * Chunked cross-entropy from hidden states (src/training/chunked-loss.ts) equals the unchunked loss
 * on full logits (maskedCrossEntropySum of hidden · Wᵀ) — value and gradients with respect to the
 * hidden states and the weight, within 1e-6 — for chunk sizes that do and do not divide the rows,
 * never builds a [tokens, vocab] tensor, and leaves no tensor behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { chunkedCrossEntropySum, lossChunkRows } from '../../src/training/chunked-loss.js';
import { IGNORE_INDEX, maskedCrossEntropySum } from '../../src/training/loss.js';

const B = 3;
const T = 7;
const H = 12;
const V = 50;
const rng = new Rng(11);
const HIDDEN = rng.fillNormal(new Float32Array(B * T * H), 1);
const WEIGHT = rng.fillNormal(new Float32Array(V * H), 0.5);
const LABELS = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => ((b + t) % 4 === 0 ? IGNORE_INDEX : rng.int(V))));

function lossAndGrads(fn: (h: tf.Tensor, w: tf.Tensor, y: tf.Tensor) => tf.Scalar): { loss: number; dh: Float32Array; dw: Float32Array } {
  const h = tf.variable(tf.tensor3d(HIDDEN, [B, T, H]));
  const w = tf.variable(tf.tensor2d(WEIGHT, [V, H]));
  const y = tf.tensor2d(LABELS, [B, T], 'int32');
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => fn(h, w, y), [h, w]);
  const out = { loss: value.dataSync()[0]!, dh: grads[h.name]!.dataSync() as Float32Array, dw: grads[w.name]!.dataSync() as Float32Array };
  tf.dispose([value, grads[h.name]!, grads[w.name]!]);
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([h, w, y]);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.each(['cpu', 'wasm'] as const)('chunkedCrossEntropySum (%s)', (backend) => {
  beforeAll(async () => {
    await initEngine({ backend });
  });

  const reference = () => lossAndGrads((h, w, y) => maskedCrossEntropySum(tf.matMul(h, w, false, true), y).sum);

  test.each([1, 4, 5, 100])('chunks of %i rows: value and gradients equal the unchunked loss within 1e-6', (rows) => {
    const ref = reference();
    const got = lossAndGrads((h, w, y) => chunkedCrossEntropySum(h, w, y, rows).sum);
    const scored = LABELS.flat().filter((y) => y !== IGNORE_INDEX).length;
    expect(Math.abs(got.loss - ref.loss) / scored).toBeLessThan(1e-6); // per-token loss
    expect(maxAbsDiff(got.dh, ref.dh)).toBeLessThan(1e-6);
    expect(maxAbsDiff(got.dw, ref.dw)).toBeLessThan(1e-6);
    expect(got.dw.some((x) => x !== 0)).toBe(true);
  });

  test('the value matches a float64 reference computed by hand', () => {
    // Σ over scored rows of logsumexp(h·Wᵀ) − (h·Wᵀ)[y], in float64.
    let expected = 0;
    for (let r = 0; r < B * T; r++) {
      const y = LABELS[Math.floor(r / T)]![r % T]!;
      if (y === IGNORE_INDEX) continue;
      const logits = Array.from({ length: V }, (_, v) => {
        let s = 0;
        for (let k = 0; k < H; k++) s += HIDDEN[r * H + k]! * WEIGHT[v * H + k]!;
        return s;
      });
      const m = Math.max(...logits);
      expected += m + Math.log(logits.reduce((a, l) => a + Math.exp(l - m), 0)) - logits[y]!;
    }
    const got = lossAndGrads((h, w, y) => chunkedCrossEntropySum(h, w, y, 4).sum);
    expect(Math.abs(got.loss - expected) / Math.abs(expected)).toBeLessThan(1e-6);
  });

  test('outside a gradient it only sums the loss', () => {
    const h = tf.tensor3d(HIDDEN, [B, T, H]);
    const w = tf.tensor2d(WEIGHT, [V, H]);
    const y = tf.tensor2d(LABELS, [B, T], 'int32');
    const { sum, count } = chunkedCrossEntropySum(h, w, y, 3);
    const ref = maskedCrossEntropySum(tf.matMul(h, w, false, true), y);
    expect(count).toBe(ref.count);
    expect(Math.abs(sum.dataSync()[0]! - ref.sum.dataSync()[0]!) / count).toBeLessThan(1e-6);
    tf.dispose([h, w, y, sum, ref.sum]);
  });

  test('a frozen weight (not among the gradient targets): the hidden-state gradient is unchanged', () => {
    const ref = reference();
    const h = tf.variable(tf.tensor3d(HIDDEN, [B, T, H]));
    const w = tf.variable(tf.tensor2d(WEIGHT, [V, H]), false);
    const y = tf.tensor2d(LABELS, [B, T], 'int32');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => chunkedCrossEntropySum(h, w, y, 4).sum, [h]);
    expect(maxAbsDiff(grads[h.name]!.dataSync() as Float32Array, ref.dh)).toBeLessThan(1e-6);
    tf.dispose([value, grads[h.name]!]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([h, w, y]);
  });

  test('a plain (upcast, frozen) weight that is not a target gets no gradient product (one matmul fewer than a trained weight)', async () => {
    const h = tf.variable(tf.tensor3d(HIDDEN, [B, T, H]));
    const w = tf.tensor2d(WEIGHT, [V, H]);
    const y = tf.tensor2d(LABELS, [B, T], 'int32');
    const count = async (xs: tf.Variable[], weight: tf.Tensor) => {
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => chunkedCrossEntropySum(h, weight, y, 100).sum, xs);
        tf.dispose([value, ...Object.values(grads)]);
      });
      return info.kernels.filter((k) => k.name === 'BatchMatMul').length;
    };
    const wv = tf.variable(w);
    const frozen = await count([h], w);
    const trained = await count([h, wv], wv);
    expect(trained - frozen).toBe(1); // the dW product
    tf.dispose([h, w, y, wv]);
  });

  test('chunk rows keep [rows, vocab] under 32 MiB', () => {
    expect(lossChunkRows(151936) * 151936 * 4).toBeLessThanOrEqual(32 * 2 ** 20);
    expect(lossChunkRows(512)).toBe(16384);
  });
});
