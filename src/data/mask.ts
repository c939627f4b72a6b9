import * as tf from '@tensorflow/tfjs-core';
import type { TokenBatch, PromptBatch } from './collate.js';

/**
 * The attention mask the model consumes, built from `[B, T]` int32 segment ids (0 = padding,
 * 1, 2, ... = the examples packed in a row; an unpacked row is all 1s then 0s):
 *   query i may attend key j  <=>  segment[i] == segment[j]  and  j <= i.
 * Padding (segment 0) attends only to padding, so no softmax row is empty and nothing real ever
 * attends to a pad. Causal + padding masking is the special case of one segment per row.
 */

/** `[B, T]` int32 segment ids -> `[B, 1, T, T]` bool mask (true = may attend). */
export function segmentAttentionMask(segmentIds: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const t = segmentIds.shape[1];
    const q = tf.expandDims(segmentIds, 2); // [B, T, 1]
    const k = tf.expandDims(segmentIds, 1); // [B, 1, T]
    const sameSegment = tf.equal(q, k); // [B, T, T]
    const causal = tf.cast(tf.linalg.bandPart(tf.ones([t, t], 'int32'), -1, 0), 'bool'); // [T, T], j <= i
    return tf.expandDims(tf.logicalAnd(sameSegment, causal), 1) as tf.Tensor4D; // [B, 1, T, T]
  });
}

/** Bool mask -> additive float32 mask: 0 where allowed, `negative` where not (add to scores). */
export function additiveMask(mask: tf.Tensor, negative = -1e9): tf.Tensor {
  return tf.tidy(() => tf.where(tf.cast(mask, 'bool'), tf.zeros(mask.shape, 'float32'), tf.fill(mask.shape, negative, 'float32')));
}

/** A collated batch as int32 tensors, `[B, T]` each. The caller disposes them. */
export function batchToTensors<B extends TokenBatch | PromptBatch>(batch: B): { [K in keyof B]: tf.Tensor2D } {
  const out: Record<string, tf.Tensor2D> = {};
  for (const [k, v] of Object.entries(batch) as [string, number[][]][]) out[k] = tf.tensor2d(v, [v.length, v[0]?.length ?? 0], 'int32');
  return out as { [K in keyof B]: tf.Tensor2D };
}
