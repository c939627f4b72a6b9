/**
 * Rewards from a model with a score head (LlamaForSequenceClassification): the scalar at each
 * sequence's last real token. Shared by the reward stage (training, `rlhf reward score`) and any
 * stage that ranks candidates with a reward model (GAtt's best-of-K).
 */
import * as tf from '@tensorflow/tfjs-core';
import { padSequences } from '../data/pad.js';
import type { LlamaModel } from './llama.js';

/**
 * One reward per sequence: the head applied to the final hidden state at the last position whose
 * mask is 1. inputIds, attentionMask: [N, T] → [N].
 */
export function sequenceRewards(
  model: LlamaModel,
  inputIds: tf.Tensor2D /* [N, T] */,
  attentionMask: tf.Tensor2D /* [N, T] */,
  opts: { training?: boolean } = {},
): tf.Tensor1D {
  const head = model.scoreHead;
  if (!head) throw new Error('sequenceRewards: the model has no score head (attachScoreHead first)');
  return tf.tidy(() => {
    // Position ids default to cumsum(mask) − 1, so a left-padded row starts at position 0 too.
    const { hidden } = model.hiddenStates({ inputIds, attentionMask, training: opts.training ?? false }); // [N, T, H]
    return head.scoreAtLastToken(hidden, attentionMask); // [N]
  });
}

/** Rewards of many id sequences, `batchSize` at a time (right-padded, read at the last real token). */
export function scoreSequences(model: LlamaModel, seqs: readonly number[][], opts: { padId: number; batchSize: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < seqs.length; i += opts.batchSize) {
    const { ids, mask } = padSequences(seqs.slice(i, i + opts.batchSize), { padId: opts.padId, side: 'right', padToMultipleOf: 8 });
    const rewards = tf.tidy(() => sequenceRewards(model, tf.tensor2d(ids, undefined, 'int32'), tf.tensor2d(mask, undefined, 'int32')));
    out.push(...rewards.dataSync());
    rewards.dispose();
  }
  return out;
}
