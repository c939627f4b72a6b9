/**
 * DPO's two passes over a batch of pairs (chosen rows first, then rejected: [2B, T]): the policy's
 * sequence log-probs, and the reference's — the policy with its adapters off (LoRA), a frozen copy
 * (full fine-tuning), or, with precomputed log-probs under full fine-tuning, the policy itself before
 * any update (so precompute before a checkpoint is restored).
 */
import * as tf from '@tensorflow/tfjs-core';
import { withAdaptersDisabled } from '../lora/index.js';
import type { LlamaModel } from '../model/index.js';
import { collateDpo, pairReplyTokens, type DpoBatch, type DpoPair } from './data.js';
import { sequenceLogps, type PairRecord } from './loss.js';

/** Sequence log-probs (summed over reply tokens) and logit sums of a collated batch; differentiable, no tidy. */
export function forwardLogps(model: LlamaModel, batch: DpoBatch, training: boolean): { logps: tf.Tensor1D; logitSums: tf.Tensor1D } {
  const inputIds = tf.tensor2d(batch.ids, undefined, 'int32'); // [2B, T]
  const attentionMask = tf.tensor2d(batch.mask, undefined, 'int32'); // [2B, T]
  const { logits } = model.forward({ inputIds, attentionMask, training }); // [2B, T, V]
  return sequenceLogps(logits as tf.Tensor3D, batch.labels);
}

/** The same without a gradient, read back: [2B] each. */
export function logpsOf(model: LlamaModel, batch: DpoBatch, training: boolean): { logps: Float32Array; logitSums: Float32Array } {
  const [logps, logitSums] = tf.tidy(() => {
    const out = forwardLogps(model, batch, training);
    return [out.logps, out.logitSums];
  });
  const result = { logps: logps!.dataSync() as Float32Array, logitSums: logitSums!.dataSync() as Float32Array };
  tf.dispose([logps!, logitSums!]);
  return result;
}

/** Per-pair numbers from a [2B] policy pass (chosen rows first) and the [2B] reference log-probs. */
export function pairRecords(pairs: readonly DpoPair[], policy: { logps: Float32Array; logitSums: Float32Array }, ref: readonly number[]): PairRecord[] {
  const b = pairs.length;
  return pairs.map((p, i) => {
    const tokens = pairReplyTokens(p);
    return {
      chosen: policy.logps[i]!,
      rejected: policy.logps[b + i]!,
      refChosen: ref[i]!,
      refRejected: ref[b + i]!,
      chosenLogitSum: policy.logitSums[i]!,
      rejectedLogitSum: policy.logitSums[b + i]!,
      chosenTokens: tokens.chosen,
      rejectedTokens: tokens.rejected,
    };
  });
}

/** The [2B] reference log-probs of a batch of pairs (chosen first); constants, no gradient flows through them. */
export type ReferenceLogps = (pairs: readonly DpoPair[], batch: DpoBatch) => number[];

/**
 * The reference for `policy`. With `precompute`, every pair of its sets gets its reference log-probs
 * now (`refChosen` / `refRejected`), read back later instead of a forward pass.
 */
export function dpoReference(opts: {
  policy: LlamaModel;
  /** The frozen copy (full fine-tuning without precomputation), else null. */
  frozen: LlamaModel | null;
  lora: boolean;
  precompute: { pairSets: readonly DpoPair[][]; batchSize: number; padId: number; log: (msg: string) => void } | null;
}): ReferenceLogps {
  const { policy, lora, precompute } = opts;
  const model = opts.frozen ?? policy;
  const pass = (batch: DpoBatch): Float32Array =>
    lora ? withAdaptersDisabled(policy, () => logpsOf(policy, batch, false).logps) : logpsOf(model, batch, false).logps;
  if (!precompute) return (_pairs, batch) => Array.from(pass(batch));

  const started = performance.now();
  let count = 0;
  for (const pairs of precompute.pairSets) {
    for (let i = 0; i < pairs.length; i += precompute.batchSize) {
      const chunk = pairs.slice(i, i + precompute.batchSize);
      const ref = pass(collateDpo(chunk, { padId: precompute.padId }));
      chunk.forEach((p, k) => {
        p.refChosen = ref[k]!;
        p.refRejected = ref[chunk.length + k]!;
      });
    }
    count += pairs.length;
  }
  precompute.log(`dpo: reference log-probs of ${count} pairs precomputed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return (pairs) => [...pairs.map((p) => p.refChosen!), ...pairs.map((p) => p.refRejected!)];
}
