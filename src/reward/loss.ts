/**
 * The reward model's objective and metrics, as Llama 2 §3.2.2 writes it:
 *
 *   L = −log σ(r_chosen − r_rejected − m)  +  c · (r_chosen + r_rejected)²      (averaged over pairs)
 *
 * m is the pair's margin (Table 27: larger for more clearly preferred pairs) and c is TRL's
 * `center_rewards_coefficient` (Eisenstein et al. 2023), which keeps rewards centred on zero.
 */
import * as tf from '@tensorflow/tfjs-core';
import { STRENGTHS, type Strength } from '../data/schemas.js';

/** Where a pair's margin m comes from: nothing, Table 27 (small / large) by `strength`, or the `margin` column. */
export type MarginKind = 'none' | 'small' | 'large' | 'column';
export const MARGIN_KINDS: readonly MarginKind[] = ['none', 'small', 'large', 'column'];

/**
 * Llama 2 Table 27: the margin per preference level (significantly better, better, slightly
 * better, negligibly better / unsure).
 */
export const MARGIN_TABLE: Record<'small' | 'large', Record<Strength, number>> = {
  small: { significantly_better: 1, better: 2 / 3, slightly_better: 1 / 3, negligibly_better: 0 },
  large: { significantly_better: 3, better: 2, slightly_better: 1, negligibly_better: 0 },
};

/**
 * The margin of one pair, or null when the row lacks what `kind` needs (a `strength` for
 * small/large, a `margin` for column) — the caller names the row in its error.
 */
export function pairMargin(row: { margin?: number; strength?: Strength }, kind: MarginKind): number | null {
  switch (kind) {
    case 'none':
      return 0;
    case 'column':
      return row.margin ?? null;
    case 'small':
    case 'large':
      return row.strength === undefined ? null : MARGIN_TABLE[kind][row.strength];
  }
}

/**
 * Σ over pairs of −log σ(r_c − r_r − m) + c·(r_c + r_r)², as a scalar tensor. Divide by the number
 * of pairs in the whole (accumulated) batch to get the loss; summing first keeps accumulation exact.
 */
export function bradleyTerryLossSum(
  chosen: tf.Tensor1D /* [B] */,
  rejected: tf.Tensor1D /* [B] */,
  margins: tf.Tensor1D /* [B] */,
  centerCoefficient: number,
): tf.Scalar {
  return tf.tidy(() => {
    const logits = tf.sub(tf.sub(chosen, rejected), margins); // [B]
    // −log σ(x) = softplus(−x), stable for large |x|.
    let perPair: tf.Tensor = tf.softplus(tf.neg(logits));
    if (centerCoefficient !== 0) perPair = tf.add(perPair, tf.mul(tf.square(tf.add(chosen, rejected)), centerCoefficient));
    return tf.sum(perPair) as tf.Scalar;
  });
}

/** The mean loss over the pairs of one batch ({@link bradleyTerryLossSum} / B). */
export function bradleyTerryLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D, margins: tf.Tensor1D, centerCoefficient: number): tf.Scalar {
  return tf.tidy(() => tf.div(bradleyTerryLossSum(chosen, rejected, margins, centerCoefficient), Math.max(1, chosen.shape[0])) as tf.Scalar);
}

/** The same loss on plain numbers (metrics, eval and reference values in tests). */
export function bradleyTerryLossValue(chosen: readonly number[], rejected: readonly number[], margins: readonly number[], centerCoefficient: number): number {
  let sum = 0;
  for (let i = 0; i < chosen.length; i++) {
    const x = chosen[i]! - rejected[i]! - (margins[i] ?? 0);
    sum += softplus(-x) + centerCoefficient * (chosen[i]! + rejected[i]!) ** 2;
  }
  return chosen.length > 0 ? sum / chosen.length : 0;
}

/** log(1 + eˣ) without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** What a batch of scored pairs tells us (TRL's names where they exist). */
export interface PairStats {
  pairs: number;
  /** Fraction of pairs with r_chosen > r_rejected (ties count as wrong, as in TRL). */
  accuracy: number;
  /** Mean of r_chosen − r_rejected. */
  margin: number;
  chosenMean: number;
  rejectedMean: number;
}

export function pairStats(chosen: readonly number[], rejected: readonly number[]): PairStats {
  const n = chosen.length;
  if (rejected.length !== n) throw new Error(`pairStats: ${n} chosen vs ${rejected.length} rejected rewards`);
  let correct = 0;
  let cSum = 0;
  let rSum = 0;
  for (let i = 0; i < n; i++) {
    if (chosen[i]! > rejected[i]!) correct++;
    cSum += chosen[i]!;
    rSum += rejected[i]!;
  }
  const mean = (s: number) => (n > 0 ? s / n : 0);
  return { pairs: n, accuracy: mean(correct), margin: mean(cSum - rSum), chosenMean: mean(cSum), rejectedMean: mean(rSum) };
}

/**
 * Accuracy per preference level (Llama 2 Table 28), in Table 27's order; levels with no pairs are
 * left out. Pairs without a strength are counted under `all` only.
 */
export function accuracyByStrength(
  chosen: readonly number[],
  rejected: readonly number[],
  strengths: readonly (Strength | undefined)[],
): { all: number; byStrength: Partial<Record<Strength, { accuracy: number; pairs: number }>> } {
  const byStrength: Partial<Record<Strength, { accuracy: number; pairs: number }>> = {};
  for (const level of STRENGTHS) {
    const idx = strengths.flatMap((s, i) => (s === level ? [i] : []));
    if (idx.length === 0) continue;
    const s = pairStats(
      idx.map((i) => chosen[i]!),
      idx.map((i) => rejected[i]!),
    );
    byStrength[level] = { accuracy: s.accuracy, pairs: s.pairs };
  }
  return { all: pairStats(chosen, rejected).accuracy, byStrength };
}

/** Mean and (population) standard deviation of every reward seen: PPO normalises with them. */
export function rewardStats(rewards: readonly number[]): { mean: number; std: number; count: number } {
  const n = rewards.length;
  if (n === 0) return { mean: 0, std: 1, count: 0 };
  let sum = 0;
  for (const r of rewards) sum += r;
  const mean = sum / n;
  let sq = 0;
  for (const r of rewards) sq += (r - mean) ** 2;
  return { mean, std: Math.sqrt(sq / n), count: n };
}
