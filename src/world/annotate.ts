/**
 * The world's annotator: labels unlabelled pairs (`rlhf pairs sample`) with the gold judge, as
 * Llama 2's annotators labelled each round's fresh comparisons (§3.2.1): which reply is better and
 * by how much, on the four-level scale, from the judge-score gap (the thresholds the bundled
 * preference data uses, `STRENGTH_THRESHOLDS`).
 *
 * Annotator noise: with probability `noise` (seeded) the annotator picks the worse reply — the
 * strength level still comes from the gap. Pairs whose gap is below the lowest level (the world
 * generator's "tie") are not kept, as the bundled data keeps none.
 */
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { judge, type PromptMessage } from './judge.js';
import { strengthForGap, type Strength } from './generate.js';

/** What an annotated row adds: reordered so `chosen` is the preferred reply. */
export interface AnnotatedPair extends Record<string, unknown> {
  prompt: PromptMessage[] | string;
  chosen: PromptMessage[] | string;
  rejected: PromptMessage[] | string;
  /** Which sampled reply was preferred: "a" (the row's first `chosen`) or "b". */
  label: 'a' | 'b';
  strength: Strength;
  chosen_score: number;
  rejected_score: number;
  annotator: string;
}

export interface AnnotationStats {
  pairs: number;
  labelled: number;
  /** Dropped: the judge scores the two replies within the lowest strength level's gap. */
  ties: number;
  /** Labelled against the judge (annotator noise). */
  flipped: number;
  byStrength: Partial<Record<Strength, number>>;
}

/** The reply text of one side: a string, or the assistant turns of a message list. */
function replyText(side: unknown, where: string): string {
  if (typeof side === 'string') return side;
  if (Array.isArray(side)) {
    const turns = side.filter((m): m is PromptMessage => typeof m === 'object' && m !== null && (m as PromptMessage).role === 'assistant');
    if (turns.length > 0) return turns.map((m) => m.content).join('\n');
  }
  throw new UserError(`${where}: expected a reply as text or as a list of messages with an assistant turn`);
}

/**
 * Label `rows` (each with `prompt`, `chosen` = reply A, `rejected` = reply B, `label` null or
 * absent). A row that already has a label is an error naming it: re-labelling would hide the
 * first annotator's choice.
 */
export function annotatePairs(
  rows: ReadonlyArray<{ row: number; value: Record<string, unknown> }>,
  opts: { noise: number; rng: Rng; where: string; annotator?: string },
): { rows: AnnotatedPair[]; stats: AnnotationStats } {
  if (!(opts.noise >= 0 && opts.noise <= 0.5)) throw new UserError(`--noise ${opts.noise}: must be in [0, 0.5] (0.5 is a coin flip)`);
  const annotator = opts.annotator ?? (opts.noise > 0 ? `world_judge(noise=${opts.noise})` : 'world_judge');
  const stats: AnnotationStats = { pairs: rows.length, labelled: 0, ties: 0, flipped: 0, byStrength: {} };
  const out: AnnotatedPair[] = [];
  for (const { row, value } of rows) {
    const where = `${opts.where}: row ${row}`;
    if (value.label !== null && value.label !== undefined) throw new UserError(`${where}: already labelled (label: ${JSON.stringify(value.label)})`);
    const prompt = value.prompt;
    if (typeof prompt !== 'string' && !Array.isArray(prompt)) throw new UserError(`${where}: prompt: expected text or a list of messages`);
    const a = replyText(value.chosen, `${where}: chosen`);
    const b = replyText(value.rejected, `${where}: rejected`);
    const request = prompt as string | PromptMessage[];
    const sa = judge(request, a).score;
    const sb = judge(request, b).score;
    // The noise draw happens for every pair, ties included, so a row's label never depends on the rows dropped before it.
    const flip = opts.rng.uniform() < opts.noise;
    const strength = strengthForGap(Math.abs(sa - sb));
    if (strength === null) {
      stats.ties++;
      continue;
    }
    const aBetter = sa > sb !== flip;
    if (flip) stats.flipped++;
    stats.labelled++;
    stats.byStrength[strength] = (stats.byStrength[strength] ?? 0) + 1;
    out.push({
      ...value,
      prompt: request,
      chosen: (aBetter ? value.chosen : value.rejected) as AnnotatedPair['chosen'],
      rejected: (aBetter ? value.rejected : value.chosen) as AnnotatedPair['rejected'],
      label: aBetter ? 'a' : 'b',
      strength,
      chosen_score: aBetter ? sa : sb,
      rejected_score: aBetter ? sb : sa,
      annotator,
    });
  }
  return { rows: out, stats };
}
