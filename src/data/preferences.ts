/** Preference files (prompt/chosen/rejected, TRL's columns) as numbered rows: what the reward and DPO stages read. */
import { UserError } from '../errors.js';
import { scanDataset } from './dataset.js';
import { enforceBadRowPolicy, type BadRowPolicy } from './problems.js';
import type { PreferenceRow } from './schemas.js';

/** A preference row with its row number in the file. */
export interface NumberedPreference {
  row: number;
  value: PreferenceRow;
}

/** Read a preference file (JSONL / Arrow / Parquet), every bad row reported together or skipped. */
export async function readPreferences(
  file: string,
  opts: { onBadRow?: BadRowPolicy; warn?: (message: string) => void } = {},
): Promise<NumberedPreference[]> {
  const scan = await scanDataset(file, 'preference');
  enforceBadRowPolicy(file, scan.problems, scan.total, opts.onBadRow ?? 'error', opts.warn);
  if (scan.rows.length === 0) throw new UserError(`${file}: no usable preference rows (${scan.total} read)`);
  return scan.rows;
}
