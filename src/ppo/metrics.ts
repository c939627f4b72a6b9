/**
 * The numbers a PPO iteration logs, under TRL's names where TRL has one.
 */
import { explainedVariance, type Rows } from './advantages.js';
import type { ShapedRewards } from './rewards.js';
import type { Rollout } from './rollout.js';
import type { UpdateStats } from './update.js';

const mean = (xs: number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((s, x) => s + x, 0) / xs.length);
const rowSums = (rows: Rows): number[] => rows.map((r) => r.reduce((s, x) => s + x, 0));

/** Per-sequence KL summed over tokens, averaged over sequences: what the adaptive controller sees. */
export function meanSequenceKl(kl: Rows): number {
  return mean(rowSums(kl));
}

export function iterationMetrics(a: {
  rollout: Rollout;
  scores: number[];
  shaped: ShapedRewards;
  returns: Rows;
  update: UpdateStats;
  klCoef: number;
  lr: number;
  episode: number;
}): Record<string, number> {
  const { rollout: ro, shaped, update } = a;
  const mbs = update.minibatches;
  const avg = (f: (m: (typeof mbs)[number]) => number): number => mean(mbs.map(f));
  const nonScore = mean(rowSums(shaped.nonScoreReward));
  const scores = mean(a.scores);
  const lengths = ro.responseMask.map((r) => r.reduce((s, x) => s + x, 0));
  const eos = ro.hasEos.filter((x) => x).length;
  let samplerDiff = 0;
  ro.samplerLogprobs.forEach((row, i) => row.forEach((lp, t) => {
    if (ro.responseMask[i]![t] !== 0) samplerDiff = Math.max(samplerDiff, Math.abs(lp - ro.logprobs[i]![t]!));
  }));
  return {
    'objective/kl': meanSequenceKl(shaped.kl),
    // TRL's sample estimate: Σ −log π_old over the response, averaged over sequences
    'objective/entropy': mean(rowSums(ro.logprobs.map((r) => r.map((x) => -x)))),
    'objective/non_score_reward': nonScore,
    'objective/rlhf_reward': nonScore + scores,
    'objective/scores': scores,
    'objective/scores_raw': mean(ro.scores),
    'policy/approxkl_avg': avg((m) => m.approxKl),
    'policy/clipfrac_avg': avg((m) => m.policyClipfrac),
    'policy/entropy_avg': avg((m) => m.entropy),
    'loss/policy_avg': avg((m) => m.policyLoss),
    'loss/value_avg': avg((m) => m.valueLoss),
    'val/clipfrac_avg': avg((m) => m.valueClipfrac),
    'val/ratio': avg((m) => m.ratioMean),
    'val/explained_variance': explainedVariance(ro.values, a.returns, ro.responseMask),
    'val/num_eos_tokens': eos,
    'response/length_mean': mean(lengths),
    'response/eos_rate': eos / ro.hasEos.length,
    'policy/grad_norm_avg': avg((m) => m.gradNorm),
    'policy/minibatches': mbs.length,
    'policy/skipped_ratio': update.skippedRatio,
    'policy/skipped_nonfinite': update.skippedNonFinite,
    'policy/early_stopped': update.earlyStopped ? 1 : 0,
    // sampler (KV cache) vs training forward: must stay ~1e-6, or π_old is wrong
    'policy/sampler_logprob_diff': samplerDiff,
    kl_coef: a.klCoef,
    lr: a.lr,
    episode: a.episode,
  };
}
