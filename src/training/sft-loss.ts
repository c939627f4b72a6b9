import * as tf from '@tensorflow/tfjs-core';
import type { TokenBatch } from '../data/index.js';
import type { LlamaModel } from '../model/index.js';
import { chunkedCrossEntropySum } from './chunked-loss.js';
import { countTargets, maskedCrossEntropySum, shiftLabels } from './loss.js';

/**
 * The SFT objective on one collated batch: cross-entropy of next-token prediction, summed over the
 * scored tokens (labels ≠ −100), so micro-batches combine exactly (see accumulation.ts). Shared by
 * the stages that fine-tune on dialogues (SFT, rejection sampling).
 */

/** Scored tokens of a batch once its labels are shifted for next-token prediction. */
export function batchTargets(batch: TokenBatch): number {
  return countTargets(shiftLabels(batch.labels));
}

/** Token-summed loss (differentiable scalar). Call inside `tf.tidy` / `tf.variableGrads`: intermediates are not disposed here. */
export function batchLossSum(model: LlamaModel, batch: TokenBatch, training: boolean): tf.Scalar {
  const shape: [number, number] = [batch.inputIds.length, batch.inputIds[0]!.length];
  const inputIds = tf.tensor2d(batch.inputIds, shape, 'int32'); // [B, T]
  const attentionMask = tf.tensor2d(batch.attentionMask, shape, 'int32'); // [B, T]
  const positionIds = tf.tensor2d(batch.positionIds, shape, 'int32'); // [B, T] (restart per packed example)
  // Packed rows (a segment id above 1): attention stays inside each example (block-diagonal causal mask).
  const packed = batch.segmentIds.some((row) => row.some((s) => s > 1));
  const segments = packed ? { segmentIds: tf.tensor2d(batch.segmentIds, shape, 'int32') } : {}; // [B, T]
  const labels = tf.tensor2d(shiftLabels(batch.labels), shape, 'int32'); // [B, T], position t scored on token t+1
  // From the hidden states in chunks of rows (training/chunked-loss.ts): no [B·T, V] logits are kept.
  const head = model.lmHeadWeight(); // [V, H]
  if (head === null) return maskedCrossEntropySum(model.forward({ inputIds, attentionMask, positionIds, ...segments, training }).logits, labels).sum;
  const { hidden } = model.hiddenStates({ inputIds, attentionMask, positionIds, ...segments, training }); // [B, T, H]
  return chunkedCrossEntropySum(hidden, head, labels).sum;
}

/** Rows of logits per loss chunk for a vocabulary (what the memory estimate assumes). */
export { lossChunkRows } from './chunked-loss.js';

/** Mean loss over every scored token of `batches` (no gradient), and the token count. */
export function evaluateLoss(model: LlamaModel, batches: readonly TokenBatch[]): { loss: number; tokens: number } {
  let sum = 0;
  let tokens = 0;
  for (const batch of batches) {
    const s = tf.tidy(() => batchLossSum(model, batch, false));
    sum += s.dataSync()[0]!;
    s.dispose();
    tokens += batchTargets(batch);
  }
  return { loss: tokens > 0 ? sum / tokens : NaN, tokens };
}
