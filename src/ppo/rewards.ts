/**
 * Reward shaping: turn one reward-model score per sequence into per-token rewards
 * r_t = −β·KL_t (+ score at the last response token).
 */
import { applyMask, whiten, type Rows } from './advantages.js';
import { klPerToken, type KlEstimator } from './kl.js';

export interface RewardStats { mean: number; std: number }

export interface ScoreOptions {
  /** The reward model's saved statistics: scores become (s − mean) / std. */
  normalize?: RewardStats | null;
  /** Clamp the (normalised) score to [−clip, clip]. */
  clip?: number | null;
  /** Subtracted from the score of every response that has no EOS (TRL's `missing_eos_penalty`). */
  missingEosPenalty?: number | null;
}

/**
 * Post-process raw scores: normalise → clip → missing-EOS penalty. The penalty comes last so that
 * clipping cannot swallow it: a truncated response always pays it in full.
 */
export function processScores(scores: number[], hasEos: boolean[], opts: ScoreOptions = {}): number[] {
  if (hasEos.length !== scores.length) throw new Error('processScores: one hasEos flag per score');
  return scores.map((raw, i) => {
    let s = raw;
    if (opts.normalize) s = (s - opts.normalize.mean) / opts.normalize.std;
    if (opts.clip != null) s = Math.min(opts.clip, Math.max(-opts.clip, s));
    if (opts.missingEosPenalty != null && !hasEos[i]) s -= opts.missingEosPenalty;
    return s;
  });
}

/** Index of the last real token of a mask row (−1 when empty). */
export function lastTokenIndex(maskRow: number[]): number {
  for (let t = maskRow.length - 1; t >= 0; t--) if (maskRow[t] !== 0) return t;
  return -1;
}

export interface ShapedRewards {
  /** Per-token rewards: −β·KL_t, plus the score at the last response token; 0 at padding. [batch, T] */
  rewards: Rows;
  /** Per-token KL estimate, 0 at padding. [batch, T] */
  kl: Rows;
  /** −β·KL_t, 0 at padding. [batch, T] */
  nonScoreReward: Rows;
}

export interface ShapeRewardsArgs {
  /** Processed scores, one per sequence. [batch] */
  scores: number[];
  /** log π_old of each sampled response token. [batch, T] */
  logprobs: Rows;
  /** log π_ref of the same tokens. [batch, T] */
  refLogprobs: Rows;
  /** 1 for response tokens (up to and including EOS), 0 for padding. [batch, T] */
  mask: Rows;
  klCoef: number;
  estimator: KlEstimator;
  /** Whiten the per-token rewards over the mask without shifting their mean (TRL's `whiten_rewards`). */
  whitenRewards?: boolean;
}

export function shapeRewards(a: ShapeRewardsArgs): ShapedRewards {
  const kl = klPerToken(a.logprobs, a.refLogprobs, a.mask, a.estimator);
  const nonScoreReward = kl.map((row) => row.map((k) => (k === 0 ? 0 : -a.klCoef * k)));
  let rewards = nonScoreReward.map((row, i) => {
    const out = row.slice();
    const last = lastTokenIndex(a.mask[i]!);
    if (last >= 0) out[last]! += a.scores[i]!;
    return out;
  });
  if (a.whitenRewards) rewards = applyMask(whiten(rewards, a.mask, { shiftMean: false }), a.mask);
  return { rewards, kl, nonScoreReward };
}
