import { renameSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { writeRows } from './records.js';

/**
 * `writeRows` under a temporary name (same extension, so the same format) renamed into place: a
 * crash or an error never leaves a half-written dataset at `path`. Returns the number of rows.
 */
export async function writeRowsAtomic(path: string, rows: readonly Record<string, unknown>[]): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp${extname(path)}`);
  try {
    const n = await writeRows(tmp, rows);
    renameSync(tmp, path);
    return n;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
