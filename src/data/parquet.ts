import { readFile, writeFile } from 'node:fs/promises';
import { tableFromIPC, tableToIPC } from 'apache-arrow';
import { UserError } from '../errors.js';
import { rowsToTable, tableRecords } from './arrow.js';
import type { RawRecord } from './records.js';

/**
 * Parquet through parquet-wasm, which converts Parquet <-> Arrow IPC streams; apache-arrow then
 * does the rest. The wasm module is imported on first use so JSONL-only runs never load it.
 */
type ParquetWasm = typeof import('parquet-wasm');
let parquetWasm: Promise<ParquetWasm> | undefined;
function loadParquetWasm(): Promise<ParquetWasm> {
  parquetWasm ??= import('parquet-wasm');
  return parquetWasm;
}

export async function* readParquetFile(path: string): AsyncGenerator<RawRecord> {
  const pq = await loadParquetWasm();
  let ipc: Uint8Array;
  try {
    ipc = pq.readParquet(await readFile(path)).intoIPCStream();
  } catch (e) {
    throw new UserError(`${path}: not a readable Parquet file: ${String((e as Error).message ?? e)}`);
  }
  yield* tableRecords(tableFromIPC(ipc));
}

export async function writeParquetFile(path: string, rows: readonly Record<string, unknown>[]): Promise<number> {
  const pq = await loadParquetWasm();
  const wasmTable = pq.Table.fromIPCStream(tableToIPC(rowsToTable(rows, path), 'stream'));
  await writeFile(path, pq.writeParquet(wasmTable));
  return rows.length;
}
