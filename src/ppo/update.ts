/**
 * The optimisation half of a PPO iteration: `ppoEpochs` passes over the rollout in shuffled
 * minibatches, each one a single AdamW step on
 *   loss = L_clip + vf_coef · L_value − entropy_coef · H
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import type { LlamaModel } from '../model/llama.js';
import type { AdamW } from '../training/adamw.js';
import { clipGradNormInPlace } from '../training/clip.js';
import type { NonFiniteGuard } from '../training/nan-guard.js';
import type { Rows } from './advantages.js';
import { maskedMeanTensor, policyLoss, valueLoss } from './losses.js';
import { responseLogprobs, type Critic } from './rollout.js';

/** What the update trains on (rollout arrays plus advantages and returns). */
export interface TrainBatch {
  promptLen: number;
  ids: number[][]; // [B, P+N]
  attentionMask: number[][]; // [B, P+N]
  responseMask: Rows; // [B, N]
  logprobs: Rows; // [B, N] π_old
  values: Rows; // [B, N] V_old
  advantages: Rows; // [B, N] whitened
  returns: Rows; // [B, N]
}

export interface UpdateOptions {
  ppoEpochs: number;
  miniBatchSize: number;
  clipRange: number;
  clipRangeValue: number;
  vfCoef: number;
  entropyCoef: number;
  temperature: number;
  lr: number;
  /** Stop all further updates on this rollout once a minibatch's approx-KL exceeds this. */
  targetKl: number | null;
  /** Skip (do not apply) a minibatch whose mean ratio exceeds this. */
  ratioThreshold: number | null;
  maxGradNorm: number | null;
}

export interface MinibatchStats {
  policyLoss: number;
  valueLoss: number;
  policyClipfrac: number;
  valueClipfrac: number;
  approxKl: number;
  ratioMean: number;
  /** max |log π_new − log π_old| over the minibatch's tokens (0 ⇔ every ratio is exactly 1). */
  maxAbsLogRatio: number;
  entropy: number;
  gradNorm: number;
  applied: boolean;
}

export interface UpdateStats {
  minibatches: MinibatchStats[];
  /** Minibatches skipped for their mean ratio. */
  skippedRatio: number;
  /** Minibatches skipped for a non-finite loss or gradient. */
  skippedNonFinite: number;
  /** Whether approx-KL > targetKl ended the update early. */
  earlyStopped: boolean;
}

export interface UpdateModels {
  policy: LlamaModel;
  critic: Critic;
  optimizer: AdamW;
  /** Everything the optimizer updates, keyed as in the optimizer. */
  params: Map<string, tf.Variable>;
}

const pick = <T>(rows: T[], idx: number[]): T[] => idx.map((i) => rows[i]!);

export function ppoUpdate(m: UpdateModels, batch: TrainBatch, o: UpdateOptions, rng: Rng, guard: NonFiniteGuard): UpdateStats {
  const stats: UpdateStats = { minibatches: [], skippedRatio: 0, skippedNonFinite: 0, earlyStopped: false };
  const varNames = [...m.params.keys()];
  const varList = varNames.map((n) => m.params.get(n)!);
  const b = batch.ids.length;
  for (let epoch = 0; epoch < o.ppoEpochs && !stats.earlyStopped; epoch++) {
    const order = rng.shuffle(Array.from({ length: b }, (_, i) => i));
    for (let start = 0; start < b; start += o.miniBatchSize) {
      const idx = order.slice(start, start + o.miniBatchSize);
      const mb = minibatchStep(m, batch, idx, o, varNames, varList);
      const finite = guard.check(stats.minibatches.length, mb.loss, mb.stats.gradNorm);
      if (!finite) stats.skippedNonFinite++;
      const tooFar = o.targetKl !== null && mb.stats.approxKl > o.targetKl;
      const ratioTooHigh = o.ratioThreshold !== null && mb.stats.ratioMean > o.ratioThreshold;
      if (ratioTooHigh) stats.skippedRatio++;
      mb.stats.applied = finite && !tooFar && !ratioTooHigh;
      if (mb.stats.applied) m.optimizer.step(mb.grads, o.lr);
      tf.dispose([...mb.grads.values()]);
      stats.minibatches.push(mb.stats);
      if (tooFar) {
        stats.earlyStopped = true;
        break;
      }
    }
  }
  return stats;
}

/** Forward + backward of one minibatch; the gradients come back clipped, not yet applied. */
function minibatchStep(
  m: UpdateModels,
  batch: TrainBatch,
  idx: number[],
  o: UpdateOptions,
  varNames: string[],
  varList: tf.Variable[],
): { loss: number; grads: Map<string, tf.Tensor>; stats: MinibatchStats } {
  const P = batch.promptLen;
  const t = tf.tidy(() => ({
    ids: tf.tensor2d(pick(batch.ids, idx), undefined, 'int32'),
    mask: tf.tensor2d(pick(batch.attentionMask, idx), undefined, 'int32'),
    respMask: tf.tensor2d(pick(batch.responseMask, idx)),
    oldLogprobs: tf.tensor2d(pick(batch.logprobs, idx)),
    oldValues: tf.tensor2d(pick(batch.values, idx)),
    advantages: tf.tensor2d(pick(batch.advantages, idx)),
    returns: tf.tensor2d(pick(batch.returns, idx)),
  }));
  let measured: tf.Tensor1D | null = null;
  try {
    const { value, grads } = tf.variableGrads(() => {
      const { logprobs, entropy } = responseLogprobs(m.policy, t.ids, t.mask, P, o.temperature, true);
      const vpred = m.critic.values(t.ids, t.mask, P, true);
      const pg = policyLoss({ newLogprobs: logprobs, oldLogprobs: t.oldLogprobs, advantages: t.advantages, mask: t.respMask, clipRange: o.clipRange });
      const vf = valueLoss({ values: vpred, oldValues: t.oldValues, returns: t.returns, mask: t.respMask, clipRangeValue: o.clipRangeValue });
      const ent = maskedMeanTensor(entropy, t.respMask);
      const maxAbsLogRatio = tf.max(tf.abs(tf.mul(tf.sub(logprobs, t.oldLogprobs), t.respMask)));
      measured = tf.keep(tf.stack([pg.loss, vf.loss, pg.clipfrac, vf.clipfrac, pg.approxKl, pg.ratioMean, maxAbsLogRatio, ent]) as tf.Tensor1D);
      return tf.sub(tf.add(pg.loss, tf.mul(o.vfCoef, vf.loss)), tf.mul(o.entropyCoef, ent)) as tf.Scalar;
    }, varList);
    const loss = value.dataSync()[0]!;
    value.dispose();
    const named = new Map<string, tf.Tensor>();
    varNames.forEach((name, i) => {
      const g = grads[varList[i]!.name];
      if (g) named.set(name, g);
    });
    const gradNorm = o.maxGradNorm !== null ? clipGradNormInPlace(named, o.maxGradNorm) : clipGradNormInPlace(named, Infinity);
    const [policyLossV, valueLossV, pcf, vcf, approxKl, ratioMean, maxAbs, entropy] = Array.from((measured as tf.Tensor1D | null)!.dataSync());
    return {
      loss,
      grads: named,
      stats: {
        policyLoss: policyLossV!, valueLoss: valueLossV!, policyClipfrac: pcf!, valueClipfrac: vcf!, approxKl: approxKl!,
        ratioMean: ratioMean!, maxAbsLogRatio: maxAbs!, entropy: entropy!, gradNorm, applied: false,
      },
    };
  } finally {
    tf.dispose([...Object.values(t), ...(measured ? [measured] : [])]);
  }
}
