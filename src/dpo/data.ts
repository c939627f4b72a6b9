/**
 * Preference rows → labelled token pairs → padded micro-batches for DPO. A side is the prompt and
 * one reply; its labels mark the reply tokens (the assistant reply and the template's turn-end
 * token), whose log-probs DPO sums. Rows without a `prompt` column (TRL's implicit prompt) have the
 * messages chosen and rejected share as their prompt, as TRL's `extract_prompt` does.
 * Everything here is tensor-free and deterministic.
 */
import type { Message, NumberedPreference, Strength } from '../data/index.js';
import { UserError } from '../errors.js';
import { tokenizePreferenceExample, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { shiftLabels } from '../training/loss.js';
import { replyLengths } from './loss.js';

/** One tokenized pair; `labels` are aligned with the ids (unshifted, −100 outside the reply). */
export interface DpoPair {
  chosenIds: number[];
  chosenLabels: number[];
  rejectedIds: number[];
  rejectedLabels: number[];
  /** Per-pair loss weight (1 unless dpo.strength_weights is set). */
  weight: number;
  strength?: Strength;
  /** Row number in its file (for messages). */
  row: number;
  /** Reference log-probs, when precomputed once for the dataset. */
  refChosen?: number;
  refRejected?: number;
}

/** Leading messages chosen and rejected share become the prompt (TRL's extract_prompt for implicit-prompt rows). */
export function splitImplicitPrompt(
  chosen: readonly Message[],
  rejected: readonly Message[],
): { prompt: Message[]; chosen: Message[]; rejected: Message[] } {
  let k = 0;
  while (
    k < chosen.length - 1 &&
    k < rejected.length - 1 &&
    chosen[k]!.role === rejected[k]!.role &&
    chosen[k]!.content === rejected[k]!.content
  ) {
    k++;
  }
  return { prompt: chosen.slice(0, k), chosen: chosen.slice(k), rejected: rejected.slice(k) };
}

/**
 * Tokenize every row. Pairs with a side longer than `maxLength` are dropped (counted), as the reward
 * stage does: cutting a side would compare part of a reply. `strengthWeights` (Llama 2's levels →
 * weight) gives each pair its weight; a row without `strength` is then an error naming the rows.
 */
export function tokenizeDpoPairs(
  tokenizer: Tokenizer,
  rows: readonly NumberedPreference[],
  opts: {
    file: string;
    template: TemplateName;
    maxLength: number;
    strengthWeights: Readonly<Record<Strength, number>> | null;
    onWarning?: (message: string) => void;
  },
): { pairs: DpoPair[]; dropped: number } {
  const pairs: DpoPair[] = [];
  const missing: number[] = [];
  const noReply: number[] = [];
  let dropped = 0;
  for (const { row, value } of rows) {
    let { prompt, chosen, rejected } = value;
    if (prompt === undefined && typeof chosen !== 'string' && typeof rejected !== 'string') {
      ({ prompt, chosen, rejected } = splitImplicitPrompt(chosen, rejected));
    }
    let weight = 1;
    if (opts.strengthWeights !== null) {
      if (value.strength === undefined) {
        missing.push(row);
        continue;
      }
      weight = opts.strengthWeights[value.strength];
    }
    const c = tokenizePreferenceExample(tokenizer, prompt, chosen, opts.template, opts.onWarning);
    const r = tokenizePreferenceExample(tokenizer, prompt, rejected, opts.template, opts.onWarning);
    if (c.inputIds.length > opts.maxLength || r.inputIds.length > opts.maxLength) {
      dropped++;
      continue;
    }
    if (replyLengths(shiftLabels([c.labels, r.labels])).some((n) => n === 0)) {
      noReply.push(row);
      continue;
    }
    pairs.push({
      chosenIds: c.inputIds,
      chosenLabels: c.labels,
      rejectedIds: r.inputIds,
      rejectedLabels: r.labels,
      weight,
      ...(value.strength !== undefined ? { strength: value.strength } : {}),
      row,
    });
  }
  const shown = (rowsOf: number[]) => rowsOf.slice(0, 20).join(', ') + (rowsOf.length > 20 ? `, … (${rowsOf.length} in all)` : '');
  if (missing.length > 0) {
    throw new UserError(`${opts.file}: dpo.strength_weights is set, which needs a "strength" column; rows without one: ${shown(missing)}`);
  }
  if (noReply.length > 0) {
    throw new UserError(`${opts.file}: rows whose chosen or rejected side has no reply token to score (an assistant message is needed): ${shown(noReply)}`);
  }
  return { pairs, dropped };
}

/** Tokens the reply spans on each side of a pair (the scored positions once shifted). */
export function pairReplyTokens(p: DpoPair): { chosen: number; rejected: number } {
  const [chosen, rejected] = replyLengths(shiftLabels([p.chosenLabels, p.rejectedLabels]));
  return { chosen: chosen!, rejected: rejected! };
}

/** A micro-batch as plain arrays: the B chosen rows then the B rejected rows, right-padded to one length T. */
export interface DpoBatch {
  ids: number[][] /* [2B, T] */;
  mask: number[][] /* [2B, T] */;
  /** Shifted for next-token prediction: position t is scored on token t+1; −100 = not scored. [2B, T] */
  labels: number[][];
}

export function collateDpo(pairs: readonly DpoPair[], opts: { padId: number; padToMultipleOf?: number }): DpoBatch {
  const seqs = [...pairs.map((p) => p.chosenIds), ...pairs.map((p) => p.rejectedIds)];
  const labelRows = [...pairs.map((p) => p.chosenLabels), ...pairs.map((p) => p.rejectedLabels)];
  const multiple = opts.padToMultipleOf ?? 8;
  const t = Math.ceil(Math.max(1, ...seqs.map((s) => s.length)) / multiple) * multiple;
  const pad = (row: readonly number[], value: number) => [...row, ...new Array<number>(t - row.length).fill(value)];
  return {
    ids: seqs.map((s) => pad(s, opts.padId)),
    mask: seqs.map((s) => pad(s.map(() => 1), 0)),
    labels: shiftLabels(labelRows.map((l) => pad(l, -100))),
  };
}
