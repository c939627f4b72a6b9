/**
 * The pure part of rejection sampling: which of K scored samples is kept, how the pool of best
 * replies carries over between rounds, and the best-of-K curve (Llama 2 Fig 7: the reward of the
 * best of K grows with K while the median does not — the headroom rejection sampling exploits).
 * No tensors here: rewards come in as numbers, so every rule is tested on hand-computed cases.
 */
import type { Message } from '../data/schemas.js';

/** Index of the highest reward; the first one on ties. */
export function bestIndex(rewards: readonly number[]): number {
  if (rewards.length === 0) throw new Error('bestIndex: no samples');
  let best = 0;
  for (let i = 1; i < rewards.length; i++) if (rewards[i]! > rewards[best]!) best = i;
  return best;
}

/**
 * Index of the median-reward sample: the lower median (rank ⌊(K−1)/2⌋ in ascending order, ties
 * by sample order), so it is always one of the samples.
 */
export function medianIndex(rewards: readonly number[]): number {
  if (rewards.length === 0) throw new Error('medianIndex: no samples');
  const order = rewards.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return order[Math.floor((rewards.length - 1) / 2)]![1];
}

/** The median of numbers (mean of the two middle ones for an even count, as numpy.median). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median: no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** K values of the curve: 1, 2, 4, … up to k, and k itself when it is not a power of two. */
export function curveKs(k: number): number[] {
  const ks: number[] = [];
  for (let n = 1; n <= k; n *= 2) ks.push(n);
  if (ks[ks.length - 1] !== k) ks.push(k);
  return ks;
}

export interface BestOfKPoint {
  k: number;
  /** Mean over prompts of the highest reward among the prompt's first k samples. */
  reward_max: number;
  /** Mean over prompts of the median reward among the prompt's first k samples. */
  reward_median: number;
}

/**
 * The best-of-K curve from each prompt's rewards in sampling order. The samples are independent
 * draws, so a prompt's first k are a sample of size k; averaging over prompts gives Fig 7's curve.
 */
export function bestOfKCurve(rewardsPerPrompt: readonly (readonly number[])[], k: number): BestOfKPoint[] {
  if (rewardsPerPrompt.length === 0) throw new Error('bestOfKCurve: no prompts');
  return curveKs(k).map((n) => {
    let max = 0;
    let med = 0;
    for (const rewards of rewardsPerPrompt) {
      if (rewards.length < n) throw new Error(`bestOfKCurve: a prompt has ${rewards.length} samples, fewer than ${n}`);
      const first = rewards.slice(0, n);
      max += Math.max(...first);
      med += median(first);
    }
    return { k: n, reward_max: max / rewardsPerPrompt.length, reward_median: med / rewardsPerPrompt.length };
  });
}

/** One prompt's K samples after scoring. */
export interface ScoredPrompt {
  /** `promptKey` of the prompt: what the pool is keyed by. */
  key: string;
  prompt: Message[];
  replies: string[];
  rewards: number[];
}

/** The best reply for one prompt so far: a pool row (`pool.jsonl`). */
export interface PoolEntry {
  prompt: Message[];
  reply: string;
  /** Its reward under the current round's reward model. */
  reward: number;
  /** The rs run folder whose sampling produced the reply. */
  origin: string;
}

export interface Selection {
  /** The kept reply per prompt: this round's prompts first (in order), then pool-only prompts (in pool order). */
  kept: PoolEntry[];
  /** Prompts whose pool reply beat this round's best. */
  fromPool: number;
  /** Prompts only in the pool (not sampled this round), carried over. */
  carried: number;
}

/**
 * Keep each prompt's best sample; with a pool (its replies already re-scored by this round's
 * reward model, keyed by prompt key), the pool's reply stays where it scores strictly higher,
 * and pool prompts not sampled this round are carried over unchanged.
 */
export function selectBest(round: readonly ScoredPrompt[], origin: string, pool: ReadonlyMap<string, PoolEntry> | null = null): Selection {
  let fromPool = 0;
  const seen = new Set<string>();
  const kept: PoolEntry[] = round.map((p) => {
    seen.add(p.key);
    const i = bestIndex(p.rewards);
    const previous = pool?.get(p.key);
    if (previous && previous.reward > p.rewards[i]!) {
      fromPool++;
      return previous;
    }
    return { prompt: p.prompt, reply: p.replies[i]!, reward: p.rewards[i]!, origin };
  });
  let carried = 0;
  for (const [key, entry] of pool ?? []) {
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(entry);
    carried++;
  }
  return { kept, fromPool, carried };
}
