/**
 * The stateless pieces of the Llama block, each matching Hugging Face's `modeling_llama.py`.
 * All math is float32 (HF upcasts RMSNorm, RoPE and softmax to float32 too).
 */
import * as tf from '@tensorflow/tfjs-core';

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
 * RoPE inverse frequencies, as HF computes them: 1 / theta^(2i/d) for i < d/2, rounded to float32.
 */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  return out;
}

/**
 * cos and sin tables for the given positions, laid out like a projection's output [B, T, heads·d]
 * (the d-wide table repeated per head), so RoPE is two same-shape multiplies per layer.
 * The angle for dimension j is pos · invFreq[j mod d/2] (HF's `cat(freqs, freqs)`).
 */
export function ropeTables(
  positionIds: tf.Tensor2D /* [B, T] */,
  invFreq: Float32Array,
  heads: number,
): { cos: tf.Tensor3D; sin: tf.Tensor3D } {
  return tf.tidy(() => {
    const [b, t] = positionIds.shape;
    const pos = tf.reshape(tf.cast(positionIds, 'float32'), [b, t, 1]);
    const freqs = tf.mul(pos, tf.tensor1d(invFreq)); // [B, T, d/2]
    const emb = tf.tile(tf.concat([freqs, freqs], -1), [1, 1, heads]); // [B, T, heads·d]
    return { cos: tf.cos(emb) as tf.Tensor3D, sin: tf.sin(emb) as tf.Tensor3D };
  });
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

/** RoPE on a projection output x [B, T, heads·d]: x · cos + rotate_half(x) · sin, per head. */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rotateHalf: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    const d = rotateHalf.shape[0];
    const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, d]), rotateHalf), x.shape);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/**
 * Additive attention bias [B, kvHeads, groups·T, S] (S = pastLen + T), the shape of the grouped
 * scores: 0 where query i (absolute index pastLen + i) may see key j — j ≤ pastLen + i and
 * attentionMask[b, j] = 1 — and MASKED_SCORE elsewhere. Built at full size once per forward so each
 * layer adds it without broadcasting (the slow path of the TF.js CPU kernels).
 */
export function attentionBias(
  attentionMask: tf.Tensor2D | null /* [B, S] */,
  batch: number,
  queryLen: number,
  pastLen: number,
  kvHeads: number,
  groups: number,
): tf.Tensor {
  return tf.tidy(() => {
    const s = pastLen + queryLen;
    const causal = new Float32Array(queryLen * s);
    for (let i = 0; i < queryLen; i++) {
      for (let j = 0; j <= pastLen + i; j++) causal[i * s + j] = 1;
    }
    let allowed: tf.Tensor = tf.tensor(causal, [1, queryLen, s]);
    if (attentionMask !== null) {
      allowed = tf.mul(allowed, tf.reshape(tf.cast(attentionMask, 'float32'), [batch, 1, s]));
    }
    const bias = tf.reshape(tf.mul(tf.sub(allowed, 1), -MASKED_SCORE), [-1, 1, 1, queryLen, s]); // [B or 1, 1, 1, T, S]
    return tf.reshape(tf.broadcastTo(bias, [batch, kvHeads, groups, queryLen, s]), [batch, kvHeads, groups * queryLen, s]);
  });
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
