import { UserError } from '../errors.js';
import { checkRow, type DatasetKind, type RowOf } from './schemas.js';
import { enforceBadRowPolicy, type BadRowPolicy, type RowProblem } from './problems.js';
import { formatFromPath, readRecords, rowUnit, type DataFormat } from './records.js';

/** A checked row and where it came from (1-based line for JSONL, row for tables). */
export interface NumberedRow<T> {
  row: number;
  value: T;
}

/** Everything learned from reading a dataset file once: the good rows and every problem. */
export interface DatasetScan<T> {
  file: string;
  format: DataFormat;
  /** Rows read (good and bad); blank JSONL lines are not rows. */
  total: number;
  rows: NumberedRow<T>[];
  problems: RowProblem[];
}

/** Read a file and check every row against the schema of `kind`, collecting all problems. */
export async function scanDataset<K extends DatasetKind>(file: string, kind: K): Promise<DatasetScan<RowOf<K>>> {
  const format = formatFromPath(file);
  const unit = rowUnit(format);
  const rows: NumberedRow<RowOf<K>>[] = [];
  const problems: RowProblem[] = [];
  let total = 0;
  for await (const rec of readRecords(file)) {
    total++;
    if (rec.error !== undefined) {
      problems.push({ file, row: rec.row, unit, field: '', reason: rec.error });
      continue;
    }
    const checked = checkRow(kind, rec.value);
    if (checked.ok) rows.push({ row: rec.row, value: checked.row });
    else for (const issue of checked.issues) problems.push({ file, row: rec.row, unit, ...issue });
  }
  return { file, format, total, rows, problems };
}

/**
 * The rows a recipe trains on. `onBadRow: 'error'` throws a UserError naming every bad row (up to
 * 20); `'skip'` drops them and reports the count and first reasons through `warn`.
 */
export async function loadDataset<K extends DatasetKind>(
  file: string,
  kind: K,
  opts: { onBadRow?: BadRowPolicy; warn?: (message: string) => void } = {},
): Promise<RowOf<K>[]> {
  const scan = await scanDataset(file, kind);
  enforceBadRowPolicy(file, scan.problems, scan.total, opts.onBadRow ?? 'error', opts.warn);
  if (scan.rows.length === 0) throw new UserError(`${file}: no usable ${kind} rows (${scan.total} read)`);
  return scan.rows.map((r) => r.value);
}
