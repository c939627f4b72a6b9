/**
 * Preference rows → token ids → padded tensors. A side of a pair is the prompt followed by that
 * answer (chat-templated when the row holds messages, `prompt + answer` + EOS when it holds text),
 * ending where the reward model reads it (`readAt`, src/tokenizer/score-position.ts): with
 * `turn_end`, at the answer's turn-end token (what the template writes after it, e.g. chatml's
 * `\n`, is cut), so the reward is learnt at the token PPO and the samplers stop at.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Message, NumberedPreference, Strength } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { scoredIds, tokenizePreferenceExample, type ReadAt, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { pairMargin, type MarginKind } from './loss.js';
import { padSequences, type PaddingSide } from '../data/pad.js';

export { padSequences, type PaddingSide } from '../data/pad.js';

/** One tokenized preference pair. `row` is where it came from in its file (for messages). */
export interface TokenizedPair {
  chosen: number[];
  rejected: number[];
  margin: number;
  strength?: Strength;
  row: number;
}

export { readPreferences, type NumberedPreference } from '../data/index.js';

/**
 * The ids of `prompt` + one answer, up to where a reward model reading at `readAt` reads (the full
 * rendering for `last_token`). TRL's implicit-prompt rows (no `prompt`) hold the whole dialogue.
 */
export function tokenizePreferenceSide(
  tokenizer: Tokenizer,
  prompt: string | Message[] | undefined,
  answer: string | Message[],
  template: TemplateName,
  readAt: ReadAt,
  onWarning?: (message: string) => void,
): number[] {
  return scoredIds(tokenizePreferenceExample(tokenizer, prompt, answer, template, onWarning), readAt);
}

/**
 * Tokenize every pair and give it its margin (`marginKind`, Llama 2 Table 27). A row that lacks what
 * the margin needs is an error naming the file and the row. Pairs with a side longer than
 * `maxLength` are dropped (as TRL does: truncation would cut off the answers being compared).
 */
export function tokenizePairs(
  tokenizer: Tokenizer,
  rows: readonly NumberedPreference[],
  opts: { file: string; template: TemplateName; readAt: ReadAt; marginKind: MarginKind; maxLength: number; onWarning?: (message: string) => void },
): { pairs: TokenizedPair[]; dropped: number } {
  const missing: number[] = [];
  const pairs: TokenizedPair[] = [];
  let dropped = 0;
  for (const { row, value } of rows) {
    const margin = pairMargin(value, opts.marginKind);
    if (margin === null) {
      missing.push(row);
      continue;
    }
    const chosen = tokenizePreferenceSide(tokenizer, value.prompt, value.chosen, opts.template, opts.readAt, opts.onWarning);
    const rejected = tokenizePreferenceSide(tokenizer, value.prompt, value.rejected, opts.template, opts.readAt, opts.onWarning);
    if (chosen.length > opts.maxLength || rejected.length > opts.maxLength) {
      dropped++;
      continue;
    }
    pairs.push({ chosen, rejected, margin, ...(value.strength !== undefined ? { strength: value.strength } : {}), row });
  }
  if (missing.length > 0) {
    const need = opts.marginKind === 'column' ? 'a "margin"' : 'a "strength"';
    const shown = missing.slice(0, 20).join(', ') + (missing.length > 20 ? `, … (${missing.length} in all)` : '');
    throw new UserError(`${opts.file}: reward.margin is "${opts.marginKind}", which needs ${need} column; rows without one: ${shown}`);
  }
  return { pairs, dropped };
}

/** Tokens a pair pads to: its longer side. */
export function pairLength(p: TokenizedPair): number {
  return Math.max(p.chosen.length, p.rejected.length);
}

/**
 * Fixed training batches of similar length (HF's `group_by_length`): shuffle (seeded), cut into
 * mega-batches of `megaBatches` batches, sort each by pair length, cut into batches. Batches stay
 * random in content and order across the data but pad far less than random batches. Returns
 * lists of pair indices; the recipe walks them in a seeded order each epoch.
 */
export function lengthGroupedBatches(pairs: readonly TokenizedPair[], opts: { batchSize: number; seed: number; megaBatches?: number }): number[][] {
  const order = new Rng(opts.seed).shuffle(pairs.map((_, i) => i));
  const mega = opts.batchSize * (opts.megaBatches ?? 50);
  const batches: number[][] = [];
  for (let m = 0; m < order.length; m += mega) {
    const group = order.slice(m, m + mega).sort((a, b) => pairLength(pairs[b]!) - pairLength(pairs[a]!) || a - b);
    for (let i = 0; i < group.length; i += opts.batchSize) batches.push(group.slice(i, i + opts.batchSize));
  }
  return batches;
}

/** A batch of pairs as tensors; chosen and rejected share one length T so they stack into [2B, T]. */
export interface PairBatch {
  chosenIds: tf.Tensor2D /* [B, T] int32 */;
  chosenMask: tf.Tensor2D /* [B, T] */;
  rejectedIds: tf.Tensor2D /* [B, T] int32 */;
  rejectedMask: tf.Tensor2D /* [B, T] */;
  margins: tf.Tensor1D /* [B] */;
}

export function pairBatch(
  pairs: readonly TokenizedPair[],
  opts: { padId: number; side?: PaddingSide; padToMultipleOf?: number },
): PairBatch {
  const longest = Math.max(0, ...pairs.flatMap((p) => [p.chosen.length, p.rejected.length]));
  const pad = { padId: opts.padId, side: opts.side ?? 'right', length: longest, padToMultipleOf: opts.padToMultipleOf };
  const c = padSequences(pairs.map((p) => p.chosen), pad);
  const r = padSequences(pairs.map((p) => p.rejected), pad);
  return {
    chosenIds: tf.tensor2d(c.ids, undefined, 'int32'),
    chosenMask: tf.tensor2d(c.mask, undefined, 'int32'),
    rejectedIds: tf.tensor2d(r.ids, undefined, 'int32'),
    rejectedMask: tf.tensor2d(r.mask, undefined, 'int32'),
    margins: tf.tensor1d(pairs.map((p) => p.margin)),
  };
}

export function disposePairBatch(b: PairBatch): void {
  tf.dispose([b.chosenIds, b.chosenMask, b.rejectedIds, b.rejectedMask, b.margins]);
}
