/**
 * Scoring many pairs without gradients: held-out accuracy (overall and per Table 27 level) and
 * the reward statistics PPO normalises with.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../model/index.js';
import type { Strength } from '../data/index.js';
import { accuracyByStrength, bradleyTerryLossValue, pairStats, type PairStats } from './loss.js';
import { pairRewards } from './model.js';
import { disposePairBatch, pairBatch, pairLength, type PaddingSide, type TokenizedPair } from './pairs.js';

export interface PairEvaluation extends PairStats {
  loss: number;
  byStrength: Partial<Record<Strength, { accuracy: number; pairs: number }>>;
  chosen: number[];
  rejected: number[];
}

/**
 * Rewards of every pair, `batchSize` pairs per forward pass (eval mode: no dropout). Pairs are
 * batched in order of length, so a batch pads to little more than its own longest pair; results
 * come back in the input order.
 */
export function scorePairs(
  model: LlamaModel,
  pairs: readonly TokenizedPair[],
  opts: { batchSize: number; padId: number; side?: PaddingSide },
): { chosen: number[]; rejected: number[] } {
  const chosen = new Array<number>(pairs.length);
  const rejected = new Array<number>(pairs.length);
  const order = pairs.map((_, i) => i).sort((a, b) => pairLength(pairs[a]!) - pairLength(pairs[b]!));
  for (let i = 0; i < order.length; i += opts.batchSize) {
    const idx = order.slice(i, i + opts.batchSize);
    const batch = pairBatch(idx.map((k) => pairs[k]!), { padId: opts.padId, side: opts.side ?? 'right', padToMultipleOf: 8 });
    const out = pairRewards(model, batch, { training: false });
    const c = out.chosen.dataSync();
    const r = out.rejected.dataSync();
    idx.forEach((k, j) => {
      chosen[k] = c[j]!;
      rejected[k] = r[j]!;
    });
    tf.dispose([out.chosen, out.rejected]);
    disposePairBatch(batch);
  }
  return { chosen, rejected };
}

/** Loss, accuracy, mean margin, reward means and accuracy per strength level over `pairs`. */
export function evaluatePairs(
  model: LlamaModel,
  pairs: readonly TokenizedPair[],
  opts: { batchSize: number; padId: number; centerCoefficient: number },
): PairEvaluation {
  const { chosen, rejected } = scorePairs(model, pairs, opts);
  const loss = bradleyTerryLossValue(chosen, rejected, pairs.map((p) => p.margin), opts.centerCoefficient);
  const { byStrength } = accuracyByStrength(chosen, rejected, pairs.map((p) => p.strength));
  return { ...pairStats(chosen, rejected), loss, byStrength, chosen, rejected };
}

/**
 * Flat metric names for the tracker: `eval/accuracy`, `eval/accuracy_by_strength/better`, …
 * (not `eval/accuracy/better`: in MLflow's file store `eval/accuracy` is a file, so it cannot also
 * be a folder).
 */
export function evalMetrics(e: PairEvaluation, prefix = 'eval/'): Record<string, number> {
  const out: Record<string, number> = {
    [`${prefix}loss`]: e.loss,
    [`${prefix}accuracy`]: e.accuracy,
    [`${prefix}margin`]: e.margin,
    [`${prefix}rewards/chosen`]: e.chosenMean,
    [`${prefix}rewards/rejected`]: e.rejectedMean,
  };
  for (const [level, v] of Object.entries(e.byStrength)) out[`${prefix}accuracy_by_strength/${level}`] = v.accuracy;
  return out;
}

/** `eval.json`: fractions, as the report's `rewardEvalSchema` reads them. */
export function evalSummary(e: PairEvaluation): { accuracy: number; accuracy_by_strength: Record<string, number>; pairs_by_strength: Record<string, number>; pairs: number } {
  const levels = Object.entries(e.byStrength);
  return {
    accuracy: e.accuracy,
    accuracy_by_strength: Object.fromEntries(levels.map(([k, v]) => [k, v.accuracy])),
    pairs_by_strength: Object.fromEntries(levels.map(([k, v]) => [k, v.pairs])),
    pairs: e.pairs,
  };
}

export function formatByStrength(e: PairEvaluation): string {
  return Object.entries(e.byStrength)
    .map(([level, v]) => `${level} ${(100 * v.accuracy).toFixed(1)}% of ${v.pairs}`)
    .join(', ');
}
