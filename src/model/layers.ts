/**
 * The stateless pieces of the Llama block, each matching Hugging Face's `modeling_llama.py`.
 * All math is float32 (HF upcasts RMSNorm, RoPE and softmax to float32 too).
 */
import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients } from '../engine/backprop.js';

/** Added to attention scores of masked keys. Finite (not -Inf) so a fully masked pad row stays finite. */
export const MASKED_SCORE = -1e9;

/** RMSNorm: x · rsqrt(mean(x²) + eps) · weight, over the last axis. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
  });
}

/** SiLU (swish): x · sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/**
 * The SwiGLU product silu(gate) · up, as one differentiable op that saves only its two inputs for
 * backprop (composed from mul/sigmoid/mul it would also save sigmoid(gate) and silu(gate): two more
 * [N, intermediate] tensors per layer). Gradients, with s = sigmoid(g):
 *   ∂/∂up = dy · g·s,   ∂/∂g = dy · up · s · (1 + g · (1 − s)).
 */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (!isRecordingGradients()) return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up));
  return swigluWithGrad(gate, up);
}

const swigluWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [gate, up, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([gate, up]);
  const value = tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up));
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => tf.tidy(() => {
    const [g, u] = saved as [tf.Tensor, tf.Tensor];
    const s = tf.sigmoid(g);
    const dUp = tf.mul(dy, tf.mul(g, s));
    const dGate = tf.mul(tf.mul(dy, u), tf.mul(s, tf.add(1, tf.mul(g, tf.sub(1, s)))));
    return [dGate, dUp];
  });
  return { value, gradFunc };
}) as (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor;

/**
 * RoPE inverse frequencies, as HF computes them: 1 / theta^(2i/d) for i < d/2, rounded to float32.
 */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  return out;
}

/** Position ids as plain numbers, row-major [batch, len] (what the tables are built from). */
export interface PositionGrid {
  batch: number;
  len: number;
  values: ArrayLike<number>;
}

/** cos/sin rows (d wide, HF's `cat(freqs, freqs)`) per position, per table scale, per invFreq. */
const ropeRowCache = new WeakMap<Float32Array, Map<number, Map<number, { cos: Float32Array; sin: Float32Array }>>>();

export function ropeRow(invFreq: Float32Array, scale: number, pos: number): { cos: Float32Array; sin: Float32Array } {
  let byScale = ropeRowCache.get(invFreq);
  if (byScale === undefined) ropeRowCache.set(invFreq, (byScale = new Map()));
  let byPos = byScale.get(scale);
  if (byPos === undefined) byScale.set(scale, (byPos = new Map()));
  let row = byPos.get(pos);
  if (row === undefined) {
    const half = invFreq.length;
    const cos = new Float32Array(2 * half);
    const sin = new Float32Array(2 * half);
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(pos * invFreq[j]!); // float32, as the tensor product was
      cos[j] = cos[j + half] = Math.fround(Math.cos(angle)) * scale;
      sin[j] = sin[j + half] = Math.fround(Math.sin(angle)) * scale;
    }
    row = { cos, sin };
    byPos.set(pos, row);
  }
  return row;
}

/**
 * cos and sin tables for the given positions, laid out like a projection's output [B, T, heads·d]
 * (the d-wide table repeated per head), so RoPE is two same-shape multiplies per layer.
 * The angle for dimension j is pos · invFreq[j mod d/2] (HF's `cat(freqs, freqs)`). `scale`
 * multiplies both tables (the query side folds attention's 1/√d in here, for free).
 * Built in JS from per-position rows cached per `invFreq`: one upload per table, no trig kernels.
 */
export function ropeTables(
  positionIds: tf.Tensor2D /* [B, T] */ | PositionGrid,
  invFreq: Float32Array,
  heads: number,
  scale = 1,
): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  return ropeTablesFor(positionIds, invFreq, [{ heads, scale }]);
}

/**
 * One stretch of heads in a RoPE table: `scale` multiplies cos and sin; `identity` heads pass
 * through unrotated (cos 1, sin 0), e.g. the value part of a fused q|k|v projection.
 */
export interface RopeSegment {
  heads: number;
  scale?: number;
  identity?: boolean;
}

/** `ropeTables` for a projection made of several stretches of heads side by side (fused q|k|v). */
export function ropeTablesFor(
  positionIds: tf.Tensor2D /* [B, T] */ | PositionGrid,
  invFreq: Float32Array,
  segments: readonly RopeSegment[],
): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  const grid = positionIds instanceof tf.Tensor
    ? { batch: positionIds.shape[0], len: positionIds.shape[1], values: positionIds.dataSync() }
    : positionIds;
  const d = 2 * invFreq.length;
  const width = d * segments.reduce((n, s) => n + s.heads, 0);
  const cos = new Float32Array(grid.batch * grid.len * width);
  const sin = new Float32Array(cos.length);
  for (let i = 0; i < grid.batch * grid.len; i++) {
    let at = i * width;
    for (const seg of segments) {
      if (seg.identity) {
        cos.fill(1, at, at + seg.heads * d); // sin stays 0
        at += seg.heads * d;
        continue;
      }
      const row = ropeRow(invFreq, seg.scale ?? 1, grid.values[i]!);
      for (let h = 0; h < seg.heads; h++, at += d) {
        cos.set(row.cos, at);
        sin.set(row.sin, at);
      }
    }
  }
  const shape: [number, number, number] = [grid.batch, grid.len, width];
  return { cos: tf.tensor3d(cos, shape), sin: tf.tensor3d(sin, shape) };
}

/**
 * The signed permutation R [d, d] with x · R = rotate_half(x) = [-x2, x1]. A matmul is exact here
 * (one ±1 term per output) and far cheaper than split + neg + concat on the TF.js backends.
 */
export function rotateHalfMatrix(d: number): tf.Tensor2D {
  const r = new Float32Array(d * d);
  const half = d / 2;
  for (let i = 0; i < half; i++) {
    r[(i + half) * d + i] = -1; // out[i] = -x[i + d/2]
    r[i * d + i + half] = 1; // out[i + d/2] = x[i]
  }
  return tf.tensor2d(r, [d, d]);
}

/**
 * RoPE on a projection output x [B, T, heads·d]: x · cos + rotate_half(x) · sin, per head.
 * Differentiable in x only (the tables are constants); its gradient, dy · cos + rotate_halfᵀ(dy · sin),
 * needs just the tables, so backprop keeps neither x nor rotate_half(x).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rotateHalf: tf.Tensor2D): tf.Tensor {
  const d = rotateHalf.shape[0];
  if (!isRecordingGradients()) {
    return tf.tidy(() => tf.add(tf.mul(x, cos), tf.mul(tf.reshape(tf.matMul(tf.reshape(x, [-1, d]), rotateHalf), x.shape), sin)));
  }
  const rope = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([cos, sin, rotateHalf]);
    const value = tf.tidy(() => {
      const rotated = tf.reshape(tf.matMul(tf.reshape(input, [-1, d]), rotateHalf), input.shape);
      return tf.add(tf.mul(input, cos), tf.mul(rotated, sin));
    });
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor => tf.tidy(() => {
      const [c, s, r] = saved as [tf.Tensor, tf.Tensor, tf.Tensor2D];
      const back = tf.reshape(tf.matMul(tf.reshape(tf.mul(dy, s), [-1, d]), r, false, true), dy.shape);
      return tf.add(tf.mul(dy, c), back);
    });
    return { value, gradFunc };
  }) as (input: tf.Tensor) => tf.Tensor;
  return rope(x);
}

/**
 * Additive attention bias [B, kvHeads, groups·T, S] (S = pastLen + T), the shape of the grouped
 * scores: 0 where query i (absolute index pastLen + i) may see key j — j ≤ pastLen + i and
 * attentionMask[b, j] = 1 — and MASKED_SCORE elsewhere. Built at full size in JS (one [T, S] block
 * per row, copied per head) so each layer adds it without broadcasting: broadcasting adds are the
 * slow path of the TF.js CPU kernels, and a Tile/broadcastTo is slow on wasm.
 * With `segmentIds` (packed rows, no cache), query i also sees key j only within its own segment:
 * a block-diagonal causal mask, so packed examples never attend to each other.
 */
export function attentionBias(
  attentionMask: tf.Tensor2D | null /* [B, S] */,
  batch: number,
  queryLen: number,
  pastLen: number,
  kvHeads: number,
  groups: number,
  /** Key columns when keys come from a preallocated cache (≥ S); columns from S on are masked by the causal rule. */
  keyLen = pastLen + queryLen,
  /** Sliding window (Mistral): key j is visible from query index q only when q − window < j ≤ q. Null: no window. */
  window: number | null = null,
  /** [B, T] segment of each position (packed examples; 0 = padding); only without past keys. Null: one segment. */
  segmentIds: ArrayLike<number> | null = null,
): tf.Tensor4D {
  const s = pastLen + queryLen;
  const cols = Math.max(keyLen, s);
  if (segmentIds !== null && (pastLen !== 0 || cols !== queryLen || segmentIds.length !== batch * queryLen)) {
    throw new Error(`attentionBias: segment ids need [B, T] = [${batch}, ${queryLen}] and no past keys or cache columns`);
  }
  const mask = attentionMask === null ? null : attentionMask.dataSync();
  const block = queryLen * cols;
  const heads = kvHeads * groups;
  const out = new Float32Array(batch * heads * block);
  const rowBlock = new Float32Array(block);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < queryLen; i++) {
      for (let j = 0; j < cols; j++) {
        const q = pastLen + i;
        const allowed = j <= q && (window === null || j > q - window) && (mask === null || mask[b * s + j] !== 0) &&
          (segmentIds === null || segmentIds[b * queryLen + i] === segmentIds[b * queryLen + j]);
        rowBlock[i * cols + j] = allowed ? 0 : MASKED_SCORE;
      }
    }
    for (let h = 0; h < heads; h++) out.set(rowBlock, (b * heads + h) * block);
  }
  return tf.tensor4d(out, [batch, kvHeads, groups * queryLen, cols]);
}

/**
 * Position ids of the last `queryLen` positions, derived from the mask as HF generation does:
 * cumsum(mask) − 1 (pads clamped to 0), so a left-padded sequence starts at position 0.
 */
export function positionIdsFromMask(attentionMask: tf.Tensor2D /* [B, S] */, queryLen: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, s] = attentionMask.shape;
    const pos = tf.maximum(tf.sub(tf.cumsum(tf.cast(attentionMask, 'float32'), 1), 1), 0);
    return tf.cast(tf.slice(pos, [0, s - queryLen], [b, queryLen]), 'int32') as tf.Tensor2D;
  });
}

/** Plain-array version of `positionIdsFromMask` for a whole row (used by generation on the CPU). */
export function positionsFromMaskRow(mask: ArrayLike<number>): number[] {
  const out: number[] = [];
  let seen = 0;
  for (let j = 0; j < mask.length; j++) {
    if (mask[j]) seen++;
    out.push(Math.max(seen - 1, 0));
  }
  return out;
}

/**
 * Softmax over the last axis. On the `cpu` backend, tf.softmax's broadcasting subtract and divide
 * take a per-element slow path; spreading the row max and row sum with a K = 1 matmul instead makes
 * it several times faster. Other backends have a fused kernel.
 */
export function softmaxLastAxis(x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'cpu') return tf.softmax(x);
  return tf.tidy(() => {
    const s = x.shape[x.shape.length - 1]!;
    const flat = tf.reshape(x, [-1, s]); // [N, S]
    const ones = tf.ones([1, s]);
    const spread = (col: tf.Tensor) => tf.matMul(col, ones); // [N, 1] → [N, S]
    const e = tf.exp(tf.sub(flat, spread(tf.max(flat, 1, true))));
    return tf.reshape(tf.div(e, spread(tf.sum(e, 1, true))), x.shape);
  });
}
