import { scanDataset } from './dataset.js';
import type { RowProblem } from './problems.js';
import { formatProblem } from './problems.js';
import { rowUnit, type DataFormat } from './records.js';
import type { DatasetKind, Message, RowOf } from './schemas.js';

/**
 * `rlhf data validate`: read a dataset once, check every row, and summarise it — row counts, the
 * TRL form of each row, token lengths when a tokenizer is given, and every problem.
 */

export interface LengthStats {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

/** Summary of a list of lengths (nearest-rank percentiles). Empty input gives all zeros. */
export function lengthStats(lengths: readonly number[]): LengthStats {
  if (lengths.length === 0) return { count: 0, min: 0, mean: 0, p50: 0, p95: 0, max: 0 };
  const sorted = Float64Array.from(lengths).sort();
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
  let sum = 0;
  for (const x of sorted) sum += x;
  return { count: sorted.length, min: sorted[0]!, mean: sum / sorted.length, p50: rank(0.5), p95: rank(0.95), max: sorted[sorted.length - 1]! };
}

/** Which TRL form a valid row has: `messages`, `prompt_completion`, `text`, `prompt`, `conversational`… */
export function rowForm(kind: DatasetKind, row: RowOf<DatasetKind>): string {
  if (kind === 'preference') {
    const r = row as RowOf<'preference'>;
    const conv = Array.isArray(r.chosen) ? 'conversational' : 'standard';
    return `${conv}${r.prompt === undefined ? '_implicit_prompt' : ''}`;
  }
  if ('messages' in row) return 'messages';
  if (kind === 'prompts') return Array.isArray((row as { prompt: unknown }).prompt) ? 'conversational_prompt' : 'prompt';
  if ('completion' in row) return 'prompt_completion';
  if ('text' in row) return 'text';
  return 'prompt';
}

/** The columns that are model input (not strength, ids or other metadata). */
const TEXT_COLUMNS = ['messages', 'prompt', 'completion', 'text', 'chosen', 'rejected'] as const;

/** The texts of a row, per column, whose token counts the report summarises (messages joined). */
export function rowTexts(row: RowOf<DatasetKind>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of TEXT_COLUMNS) {
    const v = (row as Record<string, unknown>)[k];
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = (v as Message[]).map((m) => m.content).join('\n');
  }
  return out;
}

export interface ValidationReport {
  file: string;
  format: DataFormat;
  kind: DatasetKind;
  /** Rows read, and how many passed. */
  total: number;
  valid: number;
  forms: Record<string, number>;
  problems: RowProblem[];
  /** Token counts of each text column and of the whole row (content only, no chat template). */
  tokens?: Record<string, LengthStats>;
}

export async function validateDataset(
  file: string,
  kind: DatasetKind,
  opts: { encode?: (text: string) => number[] } = {},
): Promise<ValidationReport> {
  const scan = await scanDataset(file, kind);
  const forms: Record<string, number> = {};
  const lengths: Record<string, number[]> = {};
  for (const { value } of scan.rows) {
    const form = rowForm(kind, value);
    forms[form] = (forms[form] ?? 0) + 1;
    if (!opts.encode) continue;
    let total = 0;
    for (const [column, text] of Object.entries(rowTexts(value))) {
      const n = opts.encode(text).length;
      (lengths[column] ??= []).push(n);
      total += n;
    }
    (lengths['(row total)'] ??= []).push(total);
  }
  // An empty dataset is never what the user meant to train on (row 0 = the file as a whole).
  const problems = scan.total > 0 ? scan.problems : [{ file, row: 0, unit: rowUnit(scan.format), field: '', reason: 'no rows (the file is empty)' }];
  const report: ValidationReport = { file, format: scan.format, kind, total: scan.total, valid: scan.rows.length, forms, problems };
  if (opts.encode) report.tokens = Object.fromEntries(Object.entries(lengths).map(([k, v]) => [k, lengthStats(v)]));
  return report;
}

/** The report as the CLI prints it. */
export function formatReport(r: ValidationReport): string {
  const lines = [
    `${r.file} (${r.format}, ${r.kind})`,
    `  rows: ${r.total} read, ${r.valid} valid, ${r.total - r.valid} bad`,
    `  forms: ${Object.entries(r.forms).map(([f, n]) => `${f}=${n}`).join(', ') || 'none'}`,
  ];
  if (r.tokens) {
    lines.push('  tokens (content only, no chat template):');
    lines.push('    ' + ['column', 'min', 'mean', 'p50', 'p95', 'max'].map((h, i) => (i === 0 ? h.padEnd(14) : h.padStart(8))).join(''));
    for (const [col, s] of Object.entries(r.tokens)) {
      lines.push('    ' + col.padEnd(14) + [s.min, s.mean.toFixed(1), s.p50, s.p95, s.max].map((x) => String(x).padStart(8)).join(''));
    }
  }
  if (r.problems.length) {
    lines.push(`  problems (${r.problems.length}):`);
    for (const p of r.problems) lines.push('    ' + formatProblem(p));
  } else {
    lines.push('  no problems found');
  }
  return lines.join('\n');
}
