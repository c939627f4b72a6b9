/** Datasets: readers/writers, TRL row schemas, bad-row policy, collators, packing, split, cursor. */
export * from './problems.js';
export * from './records.js';
export { readJsonl, writeJsonl } from './jsonl.js';
export { readArrowFile, writeArrowFile, rowsToTable, tableRecords } from './arrow.js';
export { readParquetFile, writeParquetFile } from './parquet.js';
export * from './schemas.js';
export * from './dataset.js';
export * from './validate.js';
export * from './collate.js';
export * from './pad.js';
export * from './packing.js';
export * from './mask.js';
export * from './split.js';
export * from './cursor.js';
export * from './convert.js';
