/**
 * Safety context distillation (Llama 2 §4.2.4), as a step of the rejection-sampling data builder.
 *
 * For each kept prompt flagged is_safety: sample replies with a safety preprompt added to the
 * prompt, score them — and the prompt's kept reply, sampled without the preprompt — with the safety
 * reward model on the prompt WITHOUT the preprompt, and use the best preprompted reply only where
 * the safety model scores it strictly higher. The training row is the original prompt + that reply:
 * the model learns to answer as if it had been told to be safe, without being told (the preprompt
 * is never trained on). Llama 2 used the safety reward model this way because the preprompt can
 * also make answers worse (vague refusals of borderline prompts), so it is kept only where it helps.
 *
 * No tensors here: sampling and scoring come in as functions, so the keep/drop rule and the row
 * format are tested on stubs.
 */
import type { Message } from '../data/schemas.js';
import type { Rng } from '../engine/rng.js';
import type { ReplySampler, ReplyScorer } from './sampling.js';
import { bestIndex, type PoolEntry } from './select.js';

export type PrepromptPlacement = 'system' | 'user_prefix';

/** The prompt as sampled for distillation: the preprompt as a leading system message, or before the first user turn's text. */
export function withSafetyPreprompt(prompt: readonly Message[], preprompt: string, placement: PrepromptPlacement): Message[] {
  const copy = prompt.map((m) => ({ ...m }));
  if (placement === 'system') {
    if (copy[0]?.role === 'system') {
      copy[0] = { role: 'system', content: `${preprompt}\n\n${copy[0].content}` };
      return copy;
    }
    return [{ role: 'system', content: preprompt }, ...copy];
  }
  const first = copy.findIndex((m) => m.role === 'user');
  if (first < 0) throw new Error('withSafetyPreprompt: the prompt has no user turn');
  copy[first] = { role: 'user', content: `${preprompt} ${copy[first]!.content}` };
  return copy;
}

/** Llama 2's keep rule: the preprompted reply is used only where the safety model scores it strictly higher, and never an empty one. */
export function useDistilled(plainSafety: number, distilledSafety: number, distilledReply: string): boolean {
  return distilledReply.trim() !== '' && distilledSafety > plainSafety;
}

/** One is_safety prompt's comparison (a `context_distillation.jsonl` row). */
export interface DistillationRow {
  /** The prompt as trained on (without the preprompt). */
  prompt: Message[];
  plain_reply: string;
  plain_safety: number;
  /** The safety model's best of the replies sampled with the preprompt. */
  distilled_reply: string;
  distilled_safety: number;
  used: boolean;
}

export interface ContextDistillationOptions {
  /** The kept reply per prompt (selectBest's `kept`). */
  kept: readonly PoolEntry[];
  /** Which kept prompts are is_safety (by index into `kept`). */
  isSafety: readonly boolean[];
  preprompt: string;
  placement: PrepromptPlacement;
  /** Replies sampled with the preprompt per prompt. */
  k: number;
  sample: ReplySampler;
  rng: Rng;
  /** The safety reward model: decides which reply is used. */
  safetyScore: ReplyScorer;
  /** The rejection-sampling reward model: a used reply's `reward` (the pool's rewards stay in its units). */
  rewardScore: ReplyScorer;
}

/** The kept replies with the distilled ones swapped in where the safety model prefers them, and one row per is_safety prompt. */
export async function contextDistill(opts: ContextDistillationOptions): Promise<{ kept: PoolEntry[]; rows: DistillationRow[] }> {
  if (opts.isSafety.length !== opts.kept.length) throw new Error(`contextDistill: ${opts.isSafety.length} is_safety flags for ${opts.kept.length} kept prompts`);
  const targets = opts.kept.map((_, i) => i).filter((i) => opts.isSafety[i]);
  const kept = [...opts.kept];
  if (targets.length === 0) return { kept, rows: [] };
  const original = targets.map((i) => opts.kept[i]!.prompt);
  const { replies } = opts.sample(
    original.map((p) => withSafetyPreprompt(p, opts.preprompt, opts.placement)),
    opts.k,
    opts.rng,
  );
  // Both sides are scored on the prompt as trained on: the preprompt only shaped the sampling.
  const repeated = original.flatMap((p) => Array.from({ length: opts.k }, () => p));
  const distilledSafety = await opts.safetyScore(repeated, replies);
  const plainSafety = await opts.safetyScore(original, targets.map((i) => opts.kept[i]!.reply));
  const rows: DistillationRow[] = targets.map((i, t) => {
    const span = distilledSafety.slice(t * opts.k, (t + 1) * opts.k);
    const best = t * opts.k + bestIndex(span);
    const reply = replies[best]!;
    return {
      prompt: original[t]!,
      plain_reply: opts.kept[i]!.reply,
      plain_safety: plainSafety[t]!,
      distilled_reply: reply,
      distilled_safety: distilledSafety[best]!,
      used: useDistilled(plainSafety[t]!, distilledSafety[best]!, reply),
    };
  });
  const usedAt = targets.filter((_, t) => rows[t]!.used);
  if (usedAt.length > 0) {
    const usedRows = rows.filter((r) => r.used);
    const rewards = await opts.rewardScore(usedRows.map((r) => r.prompt), usedRows.map((r) => r.distilled_reply));
    usedAt.forEach((i, u) => {
      kept[i] = { ...opts.kept[i]!, reply: usedRows[u]!.distilled_reply, reward: rewards[u]! };
    });
  }
  return { kept, rows };
}
