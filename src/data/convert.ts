import { UserError } from '../errors.js';
import { scanDataset } from './dataset.js';
import { enforceBadRowPolicy, summarizeProblems, type BadRowPolicy, type RowProblem } from './problems.js';
import { formatFromPath, readRecords, rowUnit, writeRows } from './records.js';
import type { DatasetKind } from './schemas.js';

/**
 * Copy a dataset into another format. Without `kind` rows are copied as they are (a row that does
 * not parse is an error: conversion never drops rows silently); with `kind` they are checked and
 * the bad-row policy applies. Returns the number of rows written.
 */
export async function convertDataset(
  input: string,
  output: string,
  opts: { kind?: DatasetKind; onBadRow?: BadRowPolicy; warn?: (message: string) => void } = {},
): Promise<number> {
  formatFromPath(output); // fail on a bad output extension before reading anything
  let rows: Record<string, unknown>[];
  if (opts.kind) {
    const scan = await scanDataset(input, opts.kind);
    enforceBadRowPolicy(input, scan.problems, scan.total, opts.onBadRow ?? 'error', opts.warn);
    rows = scan.rows.map((r) => r.value as unknown as Record<string, unknown>);
  } else {
    rows = [];
    const problems: RowProblem[] = [];
    const unit = rowUnit(formatFromPath(input));
    for await (const rec of readRecords(input)) {
      if (rec.error !== undefined) problems.push({ file: input, row: rec.row, unit, field: '', reason: rec.error });
      else if (rec.value === null || typeof rec.value !== 'object' || Array.isArray(rec.value)) {
        problems.push({ file: input, row: rec.row, unit, field: '', reason: 'a row must be an object with named columns' });
      } else rows.push(rec.value as Record<string, unknown>);
    }
    if (problems.length) throw new UserError(`${input}: ${problems.length} unreadable row(s):\n${summarizeProblems(problems, 20)}`);
  }
  return writeRows(output, rows);
}
