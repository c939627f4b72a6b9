/**
 * Decode-step pieces computed in JS on the tensors' own storage (`float32Storage`: the wasm heap or
 * the cpu backend's arrays), for inference on backends that allow it. At a decode step a whole
 * piece is a few thousand multiply-adds, far less than the fixed cost of the 6–9 TF.js ops it
 * replaces, so each is one JS pass and one upload. They follow the TF.js compositions in `layers.ts`
 * (float32 results, float64 inside), and are tested against them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { float32Storage } from '../engine/inplace.js';
import type { LayerKV } from './kvcache.js';
import { ropeRow, type PositionGrid } from './layers.js';

/** RMSNorm over the last axis: x · rsqrt(mean(x²) + eps) · weight (as `rmsNorm`). */
export function rmsNormJs(x: tf.Tensor, weight: Float32Array, eps: number): tf.Tensor {
  const h = weight.length;
  const rows = x.size / h;
  const { array, base } = float32Storage(x);
  const out = new Float32Array(x.size);
  for (let r = 0; r < rows; r++) {
    const at = base + r * h;
    let sum = 0;
    for (let j = 0; j < h; j++) {
      const v = array[at + j]!;
      sum += v * v;
    }
    const scale = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(sum / h) + eps)));
    const o = r * h;
    for (let j = 0; j < h; j++) out[o + j] = Math.fround(array[at + j]! * scale) * weight[j]!;
  }
  return tf.tensor(out, x.shape, 'float32');
}

/** Heads of a fused q|k|v projection output: nh query heads, then nkv key heads, then nkv value heads, each hd wide. */
export interface QkvLayout {
  queryHeads: number;
  kvHeads: number;
  headDim: number;
}

/** Qwen3's per-head RMSNorm weights [hd] for queries and keys, applied before RoPE. */
export interface QkNormWeights {
  q: Float32Array;
  k: Float32Array;
  eps: number;
}

/**
 * RoPE on a fused q|k|v output [B, T, (nh + 2·nkv)·hd] at the given positions, as `applyRope` with
 * `ropeTablesFor` would do it: the rotated keys and the values are written into the cache buffers
 * [B, nkv, capacity, hd] at positions `at … at + T − 1`, and the rotated queries, times `queryScale`
 * (attention's 1/√hd), come back as a new tensor [B, T, nh·hd]. With `qkNorm`, each query and key
 * head is RMS-normalised first (as `rmsNormJs` over hd values).
 */
export function ropeAppendJs(
  qkv: tf.Tensor,
  layout: QkvLayout,
  positions: PositionGrid,
  invFreq: Float32Array,
  queryScale: number,
  cache: LayerKV,
  at: number,
  qkNorm?: QkNormWeights,
): tf.Tensor3D {
  const { queryHeads: nh, kvHeads: nkv, headDim: hd } = layout;
  const [b, t] = qkv.shape as [number, number, number];
  const width = (nh + 2 * nkv) * hd;
  const capacity = cache.k.shape[2];
  if (qkv.shape[2] !== width || cache.k.shape[0] !== b || cache.k.shape[1] !== nkv || cache.k.shape[3] !== hd) {
    throw new Error(`ropeAppendJs: q|k|v [${qkv.shape}] does not fit the cache [${cache.k.shape}]`);
  }
  if (at + t > capacity) throw new Error(`ropeAppendJs: positions ${at}…${at + t - 1} beyond the capacity ${capacity}`);
  const q = new Float32Array(b * t * nh * hd);
  const src = float32Storage(qkv);
  const kDst = float32Storage(cache.k, true);
  const vDst = float32Storage(cache.v, true);
  const x = src.array;
  const half = hd / 2;
  // out[j] = x[j]·cos[j] + rotate_half(x)[j]·sin[j], rotate_half(x) = [−x[half…], x[…half]]; each
  // product rounded to float32 as the TF.js ops round them, so the result is the same to the bit.
  const normed = new Float32Array(hd);
  // One head of hd values, RMS-normalised into `normed` (rounded as rmsNormJs rounds).
  const headNorm = (from: number, weight: Float32Array, eps: number): Float32Array => {
    let sum = 0;
    for (let j = 0; j < hd; j++) sum += x[from + j]! * x[from + j]!;
    const scale = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(sum / hd) + eps)));
    for (let j = 0; j < hd; j++) normed[j] = Math.fround(x[from + j]! * scale) * weight[j]!;
    return normed;
  };
  const rotate = (from: number, cos: Float32Array, sin: Float32Array, to: Float32Array, toAt: number, norm?: Float32Array): void => {
    const xs = norm ? headNorm(from, norm, qkNorm!.eps) : x;
    const f = norm ? 0 : from;
    for (let j = 0; j < half; j++) {
      const x1 = xs[f + j]!;
      const x2 = xs[f + j + half]!;
      to[toAt + j] = Math.fround(x1 * cos[j]!) - Math.fround(x2 * sin[j]!);
      to[toAt + j + half] = Math.fround(x2 * cos[j + half]!) + Math.fround(x1 * sin[j + half]!);
    }
  };
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < t; i++) {
      const pos = positions.values[r * t + i]!;
      const rowAt = src.base + (r * t + i) * width;
      const qRow = ropeRow(invFreq, queryScale, pos);
      for (let h = 0; h < nh; h++) rotate(rowAt + h * hd, qRow.cos, qRow.sin, q, ((r * t + i) * nh + h) * hd, qkNorm?.q);
      const kRow = ropeRow(invFreq, 1, pos);
      for (let h = 0; h < nkv; h++) {
        const cacheAt = ((r * nkv + h) * capacity + at + i) * hd;
        rotate(rowAt + (nh + h) * hd, kRow.cos, kRow.sin, kDst.array, kDst.base + cacheAt, qkNorm?.k);
        const vFrom = rowAt + (nh + nkv + h) * hd;
        const vTo = vDst.base + cacheAt;
        const v = vDst.array;
        for (let j = 0; j < hd; j++) v[vTo + j] = x[vFrom + j]!;
      }
    }
  }
  return tf.tensor3d(q, [b, t, nh * hd]);
}
