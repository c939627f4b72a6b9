import { extname } from 'node:path';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { readJsonl, writeJsonl } from './jsonl.js';
import { readArrowFile, writeArrowFile } from './arrow.js';
import { readParquetFile, writeParquetFile } from './parquet.js';

/** One row as read from disk, before any schema check. `row` is 1-based (JSONL: the line number). */
export type RawRecord = { row: number; value: unknown; error?: undefined } | { row: number; error: string; value?: undefined };

export type DataFormat = 'jsonl' | 'arrow' | 'parquet';

const EXTENSIONS: Record<string, DataFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.ipc': 'arrow',
  '.feather': 'arrow',
  '.parquet': 'parquet',
};

/** The format a path's extension names; a UserError listing the known ones otherwise. */
export function formatFromPath(path: string): DataFormat {
  const format = EXTENSIONS[extname(path).toLowerCase()];
  if (!format) {
    throw new UserError(`${path}: unknown dataset extension "${extname(path)}" (expected one of ${Object.keys(EXTENSIONS).join(', ')})`);
  }
  return format;
}

/** How problems name a row: JSONL rows are lines of the file, table rows are counted from 1. */
export function rowUnit(format: DataFormat): 'line' | 'row' {
  return format === 'jsonl' ? 'line' : 'row';
}

/** Read any supported dataset file as raw records, by extension. */
export function readRecords(path: string): AsyncGenerator<RawRecord> {
  const format = formatFromPath(path);
  if (!existsSync(path)) throw new UserError(`${path}: dataset file not found`);
  if (format === 'jsonl') return readJsonl(path);
  if (format === 'arrow') return readArrowFile(path);
  return readParquetFile(path);
}

/** Write plain rows to any supported format, by extension. Returns the number of rows written. */
export async function writeRows(path: string, rows: readonly Record<string, unknown>[]): Promise<number> {
  const format = formatFromPath(path);
  if (format === 'jsonl') return writeJsonl(path, rows);
  if (format === 'arrow') return writeArrowFile(path, rows, { ipcFormat: path.toLowerCase().endsWith('.arrows') ? 'stream' : 'file' });
  return writeParquetFile(path, rows);
}

/** Every readable row of a file (rows that failed to parse are returned separately). */
export async function readAllRecords(path: string): Promise<{ rows: Array<{ row: number; value: unknown }>; errors: Array<{ row: number; error: string }> }> {
  const rows: Array<{ row: number; value: unknown }> = [];
  const errors: Array<{ row: number; error: string }> = [];
  for await (const r of readRecords(path)) {
    if (r.error !== undefined) errors.push({ row: r.row, error: r.error });
    else rows.push({ row: r.row, value: r.value });
  }
  return { rows, errors };
}
