/**
 * The optimisation half of a PPO iteration: `ppoEpochs` passes over the rollout in shuffled
 * minibatches, each one a single AdamW step on
 *   loss = L_clip + vf_coef · L_value − entropy_coef · H
 * A minibatch is `gradAccum` micro-batches of `miniBatchSize` sequences (forward + backward one
 * micro-batch at a time, gradients summed). Every mean is a token mean over the whole minibatch
 * (each micro-batch divides its token sums by the minibatch's token count), so an accumulated
 * minibatch takes the same step as the unaccumulated one of miniBatchSize × gradAccum sequences.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import type { LlamaModel } from '../model/llama.js';
import type { AdamW } from '../training/adamw.js';
import { GradientAccumulator } from '../training/accumulation.js';
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
  /** Sequences per forward/backward micro-batch. */
  miniBatchSize: number;
  /** Micro-batches per optimizer step (default 1): a minibatch is miniBatchSize × gradAccum sequences. */
  gradAccum?: number;
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
  const accum = o.gradAccum ?? 1;
  const stepSize = o.miniBatchSize * accum;
  for (let epoch = 0; epoch < o.ppoEpochs && !stats.earlyStopped; epoch++) {
    const order = rng.shuffle(Array.from({ length: b }, (_, i) => i));
    for (let start = 0; start < b; start += stepSize) {
      const idx = order.slice(start, start + stepSize);
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

/**
 * Forward + backward of one minibatch, `miniBatchSize` rows at a time; the gradients come back
 * summed and clipped, not yet applied. Each micro-batch's losses and statistics are its token sums
 * over the minibatch's token count, so the parts add up to the minibatch's token means.
 */
function minibatchStep(
  m: UpdateModels,
  batch: TrainBatch,
  idx: number[],
  o: UpdateOptions,
  varNames: string[],
  varList: tf.Variable[],
): { loss: number; grads: Map<string, tf.Tensor>; stats: MinibatchStats } {
  const tokens = idx.reduce((n, i) => n + batch.responseMask[i]!.reduce((s, x) => s + x, 0), 0);
  const micro: number[][] = [];
  for (let s = 0; s < idx.length; s += o.miniBatchSize) micro.push(idx.slice(s, s + o.miniBatchSize));
  if (micro.length === 1) {
    const one = microBatchStep(m, batch, idx, tokens, o, varNames, varList);
    return { loss: one.loss, grads: one.grads, stats: finishStats(one.measured, one.grads, o) };
  }
  const acc = new GradientAccumulator();
  let loss = 0;
  const sums = new Array<number>(8).fill(0);
  for (const part of micro) {
    const one = microBatchStep(m, batch, part, tokens, o, varNames, varList);
    acc.add(one.grads);
    tf.dispose([...one.grads.values()]);
    loss += one.loss;
    // every measurement is a share of a token mean (add up), except max |log ρ| (a max)
    one.measured.forEach((v, k) => { sums[k] = k === MAX_ABS_LOG_RATIO ? Math.max(sums[k]!, v) : sums[k]! + v; });
  }
  const grads = new Map(acc.grads); // the accumulator's tensors, now owned by the caller
  return { loss, grads, stats: finishStats(sums, grads, o) };
}

const MAX_ABS_LOG_RATIO = 6;

function finishStats(measured: number[], grads: Map<string, tf.Tensor>, o: UpdateOptions): MinibatchStats {
  const gradNorm = clipGradNormInPlace(grads, o.maxGradNorm ?? Infinity);
  const [policyLossV, valueLossV, pcf, vcf, approxKl, ratioMean, maxAbs, entropy] = measured;
  return {
    policyLoss: policyLossV!, valueLoss: valueLossV!, policyClipfrac: pcf!, valueClipfrac: vcf!, approxKl: approxKl!,
    ratioMean: ratioMean!, maxAbsLogRatio: maxAbs!, entropy: entropy!, gradNorm, applied: false,
  };
}

/** Forward + backward of the rows `idx`, every mean divided by `tokens` (the minibatch's count). */
function microBatchStep(
  m: UpdateModels,
  batch: TrainBatch,
  idx: number[],
  tokens: number,
  o: UpdateOptions,
  varNames: string[],
  varList: tf.Variable[],
): { loss: number; grads: Map<string, tf.Tensor>; measured: number[] } {
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
      const denominator = tokens;
      const pg = policyLoss({ newLogprobs: logprobs, oldLogprobs: t.oldLogprobs, advantages: t.advantages, mask: t.respMask, clipRange: o.clipRange, denominator });
      const vf = valueLoss({ values: vpred, oldValues: t.oldValues, returns: t.returns, mask: t.respMask, clipRangeValue: o.clipRangeValue, denominator });
      const ent = maskedMeanTensor(entropy, t.respMask, denominator);
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
    return { loss, grads: named, measured: Array.from((measured as tf.Tensor1D | null)!.dataSync()) };
  } finally {
    tf.dispose([...Object.values(t), ...(measured ? [measured] : [])]);
  }
}
