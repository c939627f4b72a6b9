/**
 * Combining a helpfulness and a safety reward model into one PPO score, as Llama 2 §3.2.3:
 *
 *   R_c(g|p) = R_s(g|p)  if IS_SAFETY(p) or R_s(g|p) < threshold (0.15)
 *              R_h(g|p)  otherwise
 *   R̃_c(g|p) = WHITEN(LOGIT(R_c(g|p)))
 *
 * R_s and R_h are in sigmoid space (probabilities): the paper's 0.15 reads "the safety model thinks
 * this reply is likely unsafe", and LOGIT reverses the sigmoid so the whitened score is linear
 * again. Here each model's score (after its own normalisation with reward_stats.json) is taken as
 * a logit, so σ(score) is the sigmoid-space reward. Pure functions over plain arrays, one value per
 * sequence of the rollout batch ([batch]).
 */

export const COMBINE_RULES = ['single', 'llama2'] as const;
export type CombineRule = (typeof COMBINE_RULES)[number];

/** Llama 2's safety threshold in sigmoid space. */
export const LLAMA2_SAFETY_THRESHOLD = 0.15;
/** LOGIT clamps probabilities to [ε, 1 − ε] so a saturated sigmoid stays finite (|logit| ≤ ~13.8). */
const LOGIT_EPS = 1e-6;

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

export function logit(p: number): number {
  const q = Math.min(1 - LOGIT_EPS, Math.max(LOGIT_EPS, p));
  return Math.log(q / (1 - q));
}

/**
 * Whitening over the batch: (x − mean) / sqrt(var + 1e-8), unbiased variance as TRL's `whiten`
 * (and `whiten` in advantages.ts). A batch of one has no spread to estimate: it is only centred.
 */
export function whitenBatch(values: readonly number[]): number[] {
  const n = values.length;
  if (n === 0) return [];
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return [0];
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  const inv = 1 / Math.sqrt(variance + 1e-8);
  return values.map((v) => (v - mean) * inv);
}

export interface Llama2Selection {
  /** R_c in sigmoid space, one per sequence. [batch] */
  combined: number[];
  /** true where R_c came from the safety model (a safety prompt, or R_s below the threshold). [batch] */
  fromSafety: boolean[];
}

/** The piecewise rule in sigmoid space: `helpful` and `safety` are σ(scores), [batch] each. */
export function llama2Select(
  helpful: readonly number[],
  safety: readonly number[],
  isSafety: readonly boolean[],
  threshold: number = LLAMA2_SAFETY_THRESHOLD,
): Llama2Selection {
  if (helpful.length !== safety.length || isSafety.length !== safety.length) {
    throw new Error(`llama2Select: one helpfulness score, safety score and is_safety flag per sequence (got ${helpful.length}, ${safety.length}, ${isSafety.length})`);
  }
  const fromSafety = safety.map((s, i) => isSafety[i]! || s < threshold);
  return { combined: fromSafety.map((useSafety, i) => (useSafety ? safety[i]! : helpful[i]!)), fromSafety };
}

export interface CombinedScores {
  /** The whitened combined score PPO optimises. [batch] */
  scores: number[];
  /** R_c before LOGIT and WHITEN (sigmoid space). [batch] */
  combined: number[];
  fromSafety: boolean[];
}

/**
 * Llama 2's combined reward from each model's score (logit space, e.g. normalised RM outputs):
 * σ → piecewise selection → LOGIT → WHITEN over the batch.
 */
export function combineLlama2(
  helpfulScores: readonly number[],
  safetyScores: readonly number[],
  isSafety: readonly boolean[],
  threshold: number = LLAMA2_SAFETY_THRESHOLD,
): CombinedScores {
  if (!(threshold > 0 && threshold < 1)) throw new Error(`combineLlama2: threshold must lie in (0, 1), got ${threshold}`);
  const { combined, fromSafety } = llama2Select(helpfulScores.map(sigmoid), safetyScores.map(sigmoid), isSafety, threshold);
  return { scores: whitenBatch(combined.map(logit)), combined, fromSafety };
}
