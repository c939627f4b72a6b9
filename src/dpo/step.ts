/** One micro-batch of a DPO step: the policy's pass, the loss variants and their gradients. */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../model/index.js';
import { microBatchGrads } from '../training/index.js';
import { pairReplyTokens, type DpoBatch, type DpoPair } from './data.js';
import { dpoLossSum, type DpoLossSettings, type PairRecord } from './loss.js';
import { forwardLogps, pairRecords } from './reference.js';

/**
 * Chosen and rejected of `pairs` through the policy as one [2B, T] batch; the loss of dpo.loss_type
 * (already divided by the whole step's pair / token counts, so the micro-batches' gradients add up
 * to the step's), its gradients, and each pair's figures for TRL's metrics.
 */
export function pairsLossGrads(opts: {
  policy: LlamaModel;
  trainable: Map<string, tf.Variable>;
  pairs: readonly DpoPair[];
  batch: DpoBatch;
  /** [2B] reference log-probs: constants, no gradient flows through the reference. */
  ref: readonly number[];
  settings: DpoLossSettings;
  step: { pairs: number; chosenTokens: number };
  /** Weigh each pair by its strength (dpo.strength_weights). */
  strengthWeights: boolean;
}): { loss: number; grads: Map<string, tf.Tensor>; records: PairRecord[] } {
  const { policy, pairs: mb, ref } = opts;
  const records: PairRecord[] = [];
  const part = microBatchGrads(
    opts.trainable,
    () => {
      const out = forwardLogps(policy, opts.batch, true); // [2B] each
      const b = mb.length;
      records.push(...pairRecords(mb, { logps: out.logps.dataSync() as Float32Array, logitSums: out.logitSums.dataSync() as Float32Array }, ref));
      const [chosen, rejected] = tf.split(out.logps, [b, b]) as [tf.Tensor1D, tf.Tensor1D];
      const lengths = mb.map(pairReplyTokens);
      return dpoLossSum(
        {
          chosen,
          rejected,
          refChosen: tf.tensor1d(ref.slice(0, b)),
          refRejected: tf.tensor1d(ref.slice(b)),
          chosenLengths: lengths.map((l) => l.chosen),
          rejectedLengths: lengths.map((l) => l.rejected),
        },
        opts.settings,
        opts.step,
        opts.strengthWeights ? mb.map((p) => p.weight) : undefined,
      );
    },
    1, // dpoLossSum already divides by the step's pair / token counts
  );
  return { ...part, records };
}
