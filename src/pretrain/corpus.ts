/**
 * Pretraining text → training rows.
 *
 *   files → documents → token ids (<s> doc </s>) → rows of seqLen + 1 tokens → batches
 *
 * A row of L tokens gives L − 1 (input, next token) pairs: inputs row[0..L−2], targets row[1..L−1].
 * Packed rows overlap by one token, so every token of the stream after the first is a target
 * exactly once and no position is wasted on padding.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, isAbsolute } from 'node:path';
import { readRecords } from '../data/records.js';
import { UserError } from '../errors.js';
import { packagePath } from '../paths.js';
import { trainEvalSplit } from '../data/split.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { IGNORE_INDEX } from '../training/loss.js';

export type DocumentSeparator = 'blank_line' | 'line' | 'file';

/** A relative path missing from the working directory falls back to the package's own copy (shipped data). */
export function resolveInputPath(path: string): string {
  if (isAbsolute(path) || existsSync(path)) return path;
  const shipped = packagePath(path);
  return existsSync(shipped) ? shipped : path;
}

/** Split one text into documents; empty ones (whitespace only) are dropped. */
export function splitDocuments(text: string, separator: DocumentSeparator): string[] {
  const normalized = text.replace(/\r\n?/g, '\n');
  const parts = separator === 'file' ? [normalized] : normalized.split(separator === 'line' ? /\n/ : /\n[ \t]*\n+/);
  return parts.map((d) => d.trim()).filter((d) => d.length > 0);
}

/** Every document of every corpus file, in file order. */
export async function readDocuments(
  files: readonly string[],
  opts: { separator: DocumentSeparator; textColumn: string },
): Promise<string[]> {
  const docs: string[] = [];
  for (const given of files) {
    const file = resolveInputPath(given);
    if (!existsSync(file)) throw new UserError(`data.corpus: ${given}: file not found`);
    const ext = extname(file).toLowerCase();
    if (ext === '.txt' || ext === '.text' || ext === '.md' || ext === '') {
      docs.push(...splitDocuments(readFileSync(file, 'utf8'), opts.separator));
      continue;
    }
    for await (const record of readRecords(file)) {
      const where = `${given} row ${record.row}`;
      if (record.error !== undefined) throw new UserError(`data.corpus: ${where}: ${record.error}`);
      const text = (record.value as Record<string, unknown> | null)?.[opts.textColumn];
      if (typeof text !== 'string') {
        throw new UserError(`data.corpus: ${where}: column '${opts.textColumn}' is missing or not a string (data.text_column)`);
      }
      if (text.trim().length > 0) docs.push(text);
    }
  }
  if (docs.length === 0) throw new UserError(`data.corpus: ${files.join(', ')}: no documents (all empty)`);
  return docs;
}

/** `[<s>, ...doc, </s>]` for each document. */
export function tokenizeDocuments(docs: readonly string[], tokenizer: Tokenizer): Int32Array[] {
  return docs.map((doc) => Int32Array.from([tokenizer.bosId, ...tokenizer.encode(doc, { addSpecialTokens: false }), tokenizer.eosId]));
}

/** Concatenate documents and cut the stream into rows of `seqLen + 1` tokens overlapping by one (views, no copy). */
export function packedRows(docs: readonly Int32Array[], seqLen: number): Int32Array[] {
  const total = docs.reduce((n, d) => n + d.length, 0);
  const stream = new Int32Array(total);
  let at = 0;
  for (const d of docs) {
    stream.set(d, at);
    at += d.length;
  }
  const rows: Int32Array[] = [];
  for (let start = 0; start + seqLen + 1 <= total; start += seqLen) rows.push(stream.subarray(start, start + seqLen + 1));
  return rows;
}

/** One row per document, cut to `seqLen + 1` tokens; documents too short to hold a target are dropped. */
export function documentRows(docs: readonly Int32Array[], seqLen: number): Int32Array[] {
  return docs.filter((d) => d.length >= 2).map((d) => d.subarray(0, Math.min(d.length, seqLen + 1)));
}

export interface LmBatch {
  /** [B, seqLen] row-major. */
  inputIds: Int32Array;
  /** [B, seqLen] next-token targets, −100 on padding. */
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
  /** Scored positions (labels ≠ −100). */
  targets: number;
}

/** Inputs and (already shifted) targets for `rows`, right-padded to `seqLen` with `padId`. */
export function lmBatch(rows: readonly Int32Array[], seqLen: number, padId: number): LmBatch {
  const b = rows.length;
  const inputIds = new Int32Array(b * seqLen).fill(padId);
  const labels = new Int32Array(b * seqLen).fill(IGNORE_INDEX);
  let targets = 0;
  rows.forEach((row, i) => {
    const n = Math.min(row.length - 1, seqLen);
    inputIds.set(row.subarray(0, n), i * seqLen);
    labels.set(row.subarray(1, n + 1), i * seqLen);
    targets += Math.max(0, n);
  });
  return { inputIds, labels, batchSize: b, seqLen, targets };
}

/**
 * The corpus as training and eval rows of seq_len + 1 tokens (packed, or one document a row), with
 * the targets each set holds. Documents are held out whole, so eval text is never seen in training.
 */
export function corpusRows(
  documents: readonly string[],
  tokenizer: Tokenizer,
  opts: { seqLen: number; packing: boolean; batchSize: number; seed: number; evalDocuments: number; evalMaxRows: number | null },
): { trainRows: Int32Array[]; evalRows: Int32Array[]; trainTokens: number; evalTokens: number } {
  const { seqLen, batchSize } = opts;
  const split = trainEvalSplit([...documents], { seed: opts.seed, evalSize: Math.min(opts.evalDocuments, documents.length - 1) });
  const toRows = (docs: string[]) => (opts.packing ? packedRows : documentRows)(tokenizeDocuments(docs, tokenizer), seqLen);
  const trainRows = toRows(split.train);
  const evalRows = toRows(split.eval).slice(0, opts.evalMaxRows ?? undefined);
  if (trainRows.length < batchSize) {
    throw new UserError(
      `data.corpus: only ${trainRows.length} training rows of data.seq_len ${seqLen} + 1 tokens, fewer than ` +
        `train.batch_size ${batchSize}; add text or lower data.seq_len / train.batch_size`,
    );
  }
  const trainTokens = lmBatch(trainRows, seqLen, tokenizer.padId).targets;
  const evalTokens = evalRows.length > 0 ? lmBatch(evalRows, seqLen, tokenizer.padId).targets : 0;
  return { trainRows, evalRows, trainTokens, evalTokens };
}
