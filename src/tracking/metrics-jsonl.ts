/**
 * `metrics.jsonl` in the run folder: one JSON object per logMetrics call,
 * `{"step":10,"timestamp":1700000000000,"loss":0.53,"objective/kl":0.01}`. It is the local copy that
 * is always written, whatever happens to the MLflow backends. JSON has no NaN/Infinity, so those are
 * written as the strings "NaN", "Infinity", "-Infinity" (as protobuf JSON does) and read back as numbers.
 */

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const METRICS_FILE = 'metrics.jsonl';

export interface MetricsRow {
  step: number;
  timestamp: number;
  [metric: string]: number;
}

function encodeValue(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** One line, newline included. `step` and `timestamp` come first and cannot be overwritten by a metric. */
export function metricsJsonLine(step: number, timestamp: number, metrics: Record<string, number>): string {
  const row: Record<string, number | string> = { step, timestamp };
  for (const [key, value] of Object.entries(metrics)) {
    if (key !== 'step' && key !== 'timestamp') row[key] = encodeValue(value);
  }
  return JSON.stringify(row) + '\n';
}

/** Appends to `path` (a resumed run continues the same file). */
export class MetricsJsonlWriter {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
  }
  append(step: number, timestamp: number, metrics: Record<string, number>): void {
    appendFileSync(this.path, metricsJsonLine(step, timestamp, metrics));
  }
}

/** All rows of a metrics.jsonl (empty if the file does not exist); a bad line names file and line number. */
export function readMetricsJsonl(path: string): MetricsRow[] {
  if (!existsSync(path)) return [];
  const rows: MetricsRow[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const row: Record<string, number> = {};
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      row[key] = typeof value === 'string' ? Number(value) : (value as number);
    }
    rows.push(row as MetricsRow);
  });
  return rows;
}
