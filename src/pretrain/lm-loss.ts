/** Causal-LM loss of a model on pretraining rows: the token-summed loss for training, the mean for eval. */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../model/llama.js';
import { maskedCrossEntropySum } from '../training/loss.js';
import { lmBatch, type LmBatch } from './corpus.js';

/**
 * Token-summed next-token cross-entropy of one batch (a scalar built from the model's variables,
 * so it can sit inside `tf.variableGrads`). Right padding needs no attention mask: a causal model's
 * real tokens never look right, and padded positions carry no target.
 */
export function lmLossSum(model: LlamaModel, batch: LmBatch): tf.Scalar {
  return tf.tidy(() => {
    const shape: [number, number] = [batch.batchSize, batch.seqLen];
    const inputIds = tf.tensor2d(batch.inputIds, shape, 'int32'); // [B, T]
    const labels = tf.tensor2d(batch.labels, shape, 'int32'); // [B, T], already shifted
    const { logits } = model.forward({ inputIds, training: true }); // [B, T, V]
    return maskedCrossEntropySum(logits, labels).sum;
  });
}

/** Mean next-token loss over every target of `rows`, in batches of `batchSize` (no gradients). */
export function evaluateLmLoss(
  model: LlamaModel,
  rows: readonly Int32Array[],
  opts: { batchSize: number; seqLen: number; padId: number },
): { loss: number; targets: number } {
  let sum = 0;
  let targets = 0;
  for (let i = 0; i < rows.length; i += opts.batchSize) {
    const batch = lmBatch(rows.slice(i, i + opts.batchSize), opts.seqLen, opts.padId);
    const s = tf.tidy(() => {
      const shape: [number, number] = [batch.batchSize, batch.seqLen];
      const { logits } = model.forward({ inputIds: tf.tensor2d(batch.inputIds, shape, 'int32') });
      return maskedCrossEntropySum(logits, tf.tensor2d(batch.labels, shape, 'int32')).sum;
    });
    sum += s.dataSync()[0]!;
    s.dispose();
    targets += batch.targets;
  }
  return { loss: targets > 0 ? sum / targets : NaN, targets };
}
