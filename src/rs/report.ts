/** Step 4: the best-of-K curve, the gold judge's verdict on it, and how both are logged. */
import type { Message } from '../data/schemas.js';
import type { RsConfig } from './config.js';
import type { SampledPrompt } from './sampling.js';
import { bestIndex, bestOfKCurve, medianIndex, type BestOfKPoint, type Selection } from './select.js';

/** The gold judge of replies to prompts (the world's, handed in by the CLI or pipeline): one score each. */
export type ReplyJudge = (prompts: readonly Message[][], replies: readonly string[]) => number[];

/** What best_of_k.json holds. */
export interface BestOfKReport {
  prompts: number;
  k: number;
  temperature: number;
  curve: BestOfKPoint[];
  /**
   * Mean gold-judge score of the kept (best-reward), median-reward and first sample, and of the
   * judge's own best of the K (`oracle`: what a perfect reward model would keep — the gap to `best`
   * is the reward model's selection error); null without a judge.
   */
  judge: { best: number; median: number; first: number; oracle: number } | null;
  /** Share of samples that ran out of max_new_tokens before their turn end. */
  unfinished: number;
}

export function bestOfKReport(cfg: RsConfig, samples: readonly SampledPrompt[], judge: ReplyJudge | undefined): BestOfKReport {
  const all = samples.flatMap((s) => s.finished);
  let judged: BestOfKReport['judge'] = null;
  if (judge) {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const all = judge(samples.flatMap((s) => s.replies.map(() => s.prompt)), samples.flatMap((s) => s.replies));
    const k = cfg.rs.k;
    const scores = samples.map((_, i) => all.slice(i * k, (i + 1) * k)); // [prompt][sample]
    judged = {
      best: mean(samples.map((s, i) => scores[i]![bestIndex(s.rewards)]!)),
      median: mean(samples.map((s, i) => scores[i]![medianIndex(s.rewards)]!)),
      first: mean(scores.map((xs) => xs[0]!)),
      oracle: mean(scores.map((xs) => Math.max(...xs))),
    };
  }
  return {
    prompts: samples.length,
    k: cfg.rs.k,
    temperature: cfg.rs.temperature,
    curve: bestOfKCurve(samples.map((s) => s.rewards), cfg.rs.k),
    judge: judged,
    unfinished: all.filter((f) => !f).length / Math.max(1, all.length),
  };
}

/** Logged once at step 0 of a fresh run: the curve as one metric per K, and the judge comparison. */
export function stageZeroMetrics(r: BestOfKReport, s: Selection): Record<string, number> {
  const m: Record<string, number> = { 'rs/prompts': r.prompts, 'rs/kept': s.kept.length, 'rs/from_pool': s.fromPool, 'rs/unfinished': r.unfinished };
  for (const p of r.curve) {
    m[`rs/reward_max_at_${p.k}`] = p.reward_max;
    m[`rs/reward_median_at_${p.k}`] = p.reward_median;
  }
  if (r.judge) {
    m['rs/judge_best'] = r.judge.best;
    m['rs/judge_median'] = r.judge.median;
    m['rs/judge_first'] = r.judge.first;
    m['rs/judge_oracle'] = r.judge.oracle;
  }
  return m;
}

export function logSelection(r: BestOfKReport, s: Selection, log: (m: string) => void): void {
  const curve = r.curve.map((p) => `K=${p.k}: max ${p.reward_max.toFixed(3)} median ${p.reward_median.toFixed(3)}`).join('; ');
  log(`rs: best of K over ${r.prompts} prompts: ${curve}`);
  if (r.judge) log(`rs: gold judge: best ${r.judge.best.toFixed(3)}, median ${r.judge.median.toFixed(3)}, first sample ${r.judge.first.toFixed(3)}, judge's own best of K ${r.judge.oracle.toFixed(3)}`);
  if (s.fromPool > 0 || s.carried > 0) log(`rs: pool: ${s.fromPool} prompts kept an earlier round's reply, ${s.carried} carried over unsampled`);
  if (r.unfinished > 0) log(`rs: ${(100 * r.unfinished).toFixed(1)}% of samples ran out of rs.max_new_tokens before their turn end`);
}
