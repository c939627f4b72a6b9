/**
 * Collators: tokenized examples -> padded `[batch, seq]` batches as plain number arrays (turn them
 * into tensors with `batchToTensors`). Tokenizer-independent: they see ids, labels and `padId`.
 *
 * Conventions (Hugging Face's): `labels` are aligned with `inputIds`, NOT shifted — the model
 * predicts `labels[t + 1]` from position t — and -100 marks a token with no loss. Padding is marked
 * by `attentionMask` / `segmentIds`, never by comparing ids with `padId`, so a pad id equal to EOS
 * never hides a trained EOS.
 */

export const IGNORE_INDEX = -100;

export interface Example {
  inputIds: number[];
  /** Same length as inputIds; IGNORE_INDEX (-100) = no loss on this token. */
  labels: number[];
}

/** Which end survives when an example is longer than max_length. */
export type Truncation = 'keep_start' | 'keep_end';

/**
 * A padded batch; every field is `[batch, seq]`.
 * - attentionMask: 1 = real token, 0 = padding.
 * - positionIds: restart at 0 at each sequence's (or packed segment's) first real token; 0 on pads.
 * - segmentIds: which example a token belongs to within its row, from 1; 0 = padding. Unpacked
 *   batches have one segment per row. The attention rule the model must apply: query i sees key j
 *   iff segmentIds[i] == segmentIds[j] and j <= i (see `segmentAttentionMask` in mask.ts).
 */
export interface TokenBatch {
  inputIds: number[][];
  labels: number[][];
  attentionMask: number[][];
  positionIds: number[][];
  segmentIds: number[][];
}

/** A generation batch: left-padded prompts, so every row's next token is at the same column. */
export type PromptBatch = Omit<TokenBatch, 'labels'>;

export function truncateIds(ids: readonly number[], maxLength: number, side: Truncation): number[] {
  if (ids.length <= maxLength) return ids.slice();
  return side === 'keep_start' ? ids.slice(0, maxLength) : ids.slice(ids.length - maxLength);
}

export function truncateExample(ex: Example, maxLength: number, side: Truncation): Example {
  checkExample(ex);
  return { inputIds: truncateIds(ex.inputIds, maxLength, side), labels: truncateIds(ex.labels, maxLength, side) };
}

/** Smallest multiple of `multiple` that is >= n (n itself when multiple is 1). */
export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export interface CollateOptions {
  padId: number;
  /** Examples longer than this are truncated (`truncation` says which end stays). */
  maxLength?: number;
  truncation?: Truncation;
  /** Pad the batch to a multiple of this (fewer distinct shapes -> fewer kernel recompilations). */
  padToMultipleOf?: number;
  /** Pad to at least this length (e.g. to give chosen and rejected one shape). */
  minLength?: number;
}

/** Right padding for training: pads get padId, label -100, attention 0, segment 0. */
export function collateTrain(examples: readonly Example[], opts: CollateOptions): TokenBatch {
  const rows = examples.map((ex) =>
    opts.maxLength === undefined ? (checkExample(ex), ex) : truncateExample(ex, opts.maxLength, opts.truncation ?? 'keep_start'),
  );
  const seq = batchLength(rows.map((r) => r.inputIds.length), opts);
  const batch: TokenBatch = { inputIds: [], labels: [], attentionMask: [], positionIds: [], segmentIds: [] };
  for (const r of rows) {
    const pad = seq - r.inputIds.length;
    batch.inputIds.push([...r.inputIds, ...fill(pad, opts.padId)]);
    batch.labels.push([...r.labels, ...fill(pad, IGNORE_INDEX)]);
    batch.attentionMask.push([...fill(r.inputIds.length, 1), ...fill(pad, 0)]);
    batch.positionIds.push([...range(r.inputIds.length), ...fill(pad, 0)]);
    batch.segmentIds.push([...fill(r.inputIds.length, 1), ...fill(pad, 0)]);
  }
  return batch;
}

/**
 * Left padding for generation. Prompts too long keep their end by default (the latest turns
 * matter most to the next token). Position ids start at 0 on each prompt's first real token.
 */
export function collateGeneration(
  prompts: readonly (readonly number[])[],
  opts: { padId: number; maxLength?: number; truncation?: Truncation; padToMultipleOf?: number },
): PromptBatch {
  const rows = prompts.map((p) => (opts.maxLength === undefined ? p.slice() : truncateIds(p, opts.maxLength, opts.truncation ?? 'keep_end')));
  const seq = batchLength(rows.map((r) => r.length), opts);
  const batch: PromptBatch = { inputIds: [], attentionMask: [], positionIds: [], segmentIds: [] };
  for (const r of rows) {
    const pad = seq - r.length;
    batch.inputIds.push([...fill(pad, opts.padId), ...r]);
    batch.attentionMask.push([...fill(pad, 0), ...fill(r.length, 1)]);
    batch.positionIds.push([...fill(pad, 0), ...range(r.length)]);
    batch.segmentIds.push([...fill(pad, 0), ...fill(r.length, 1)]);
  }
  return batch;
}

export interface PreferencePair {
  chosen: Example;
  rejected: Example;
  margin?: number;
}

/**
 * TRL's reward trainer drops pairs in which either side is longer than max_length (truncating
 * would cut off the very answers being compared). Returns the kept pairs and how many were dropped.
 */
export function dropLongPairs<P extends PreferencePair>(pairs: readonly P[], maxLength: number): { kept: P[]; dropped: number } {
  const kept = pairs.filter((p) => p.chosen.inputIds.length <= maxLength && p.rejected.inputIds.length <= maxLength);
  return { kept, dropped: pairs.length - kept.length };
}

/** Chosen and rejected right-padded to one common length, so they can run as one [2B, T] batch. */
export function collatePreference(
  pairs: readonly PreferencePair[],
  opts: { padId: number; padToMultipleOf?: number },
): { chosen: TokenBatch; rejected: TokenBatch; margins: number[] } {
  const longest = Math.max(0, ...pairs.flatMap((p) => [p.chosen.inputIds.length, p.rejected.inputIds.length]));
  const common = { padId: opts.padId, padToMultipleOf: opts.padToMultipleOf, minLength: longest };
  return {
    chosen: collateTrain(pairs.map((p) => p.chosen), common),
    rejected: collateTrain(pairs.map((p) => p.rejected), common),
    margins: pairs.map((p) => p.margin ?? 0),
  };
}

/** Index of each row's last real token (where a reward head reads its score). */
export function lastTokenIndices(attentionMask: readonly (readonly number[])[]): number[] {
  return attentionMask.map((row) => row.lastIndexOf(1));
}

function batchLength(lengths: number[], opts: { padToMultipleOf?: number; minLength?: number }): number {
  return roundUp(Math.max(0, opts.minLength ?? 0, ...lengths), opts.padToMultipleOf ?? 1);
}

function checkExample(ex: Example): void {
  if (ex.inputIds.length !== ex.labels.length) {
    throw new Error(`collate: inputIds (${ex.inputIds.length}) and labels (${ex.labels.length}) differ in length`);
  }
}

export function fill(n: number, value: number): number[] {
  return new Array<number>(n).fill(value);
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
