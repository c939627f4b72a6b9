import { UserError } from '../errors.js';

/**
 * One thing wrong with one dataset row. `row` is 1-based (0: the file as a whole): the line number in a JSONL file, the row
 * index in an Arrow / Parquet table. `field` is a path like `messages[2].role` ('' = the whole row).
 */
export interface RowProblem {
  file: string;
  row: number;
  /** 'line' for JSONL (a file position the user can jump to), 'row' for tables. */
  unit: 'line' | 'row';
  field: string;
  reason: string;
}

/** What to do with a row that fails its schema: stop the run, or drop it and say so. */
export type BadRowPolicy = 'error' | 'skip';

/** `data/train.jsonl line 17: messages[2].role: unknown role "bot"` (row 0: the file as a whole). */
export function formatProblem(p: RowProblem): string {
  const where = p.row > 0 ? `${p.file} ${p.unit} ${p.row}` : p.file;
  return p.field ? `${where}: ${p.field}: ${p.reason}` : `${where}: ${p.reason}`;
}

/** A multi-line summary naming the first `limit` problems and how many more there are. */
export function summarizeProblems(problems: readonly RowProblem[], limit = 5): string {
  const shown = problems.slice(0, limit).map((p) => '  ' + formatProblem(p));
  const more = problems.length - shown.length;
  if (more > 0) shown.push(`  ... and ${more} more`);
  return shown.join('\n');
}

/**
 * Apply the bad-row policy after a file was read: `error` throws one UserError listing the problems,
 * `skip` tells `warn` how many rows were dropped and the first reasons — never silently.
 */
export function enforceBadRowPolicy(
  file: string,
  problems: readonly RowProblem[],
  totalRows: number,
  policy: BadRowPolicy,
  warn: (message: string) => void = (m) => console.warn(m),
): void {
  if (problems.length === 0) return;
  const badRows = new Set(problems.map((p) => p.row)).size;
  if (policy === 'error') {
    throw new UserError(
      `${file}: ${badRows} bad row(s) of ${totalRows} (data.on_bad_row=error; set it to skip to drop them):\n` +
        summarizeProblems(problems, 20),
    );
  }
  warn(`${file}: skipped ${badRows} bad row(s) of ${totalRows}; first reasons:\n` + summarizeProblems(problems, 5));
}
