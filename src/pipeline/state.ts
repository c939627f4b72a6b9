/**
 * What the pipeline remembers between invocations (`runs/<name>/pipeline_state.json`): per stage,
 * the hash of the resolved config it ran with and whether it finished. A stage is skipped when it
 * finished with the same config; an interrupted one with the same config resumes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/write.js';
import type { PipelineStage } from './config.js';

export const PIPELINE_STATE_FILE = 'pipeline_state.json';

export interface StageState {
  config_hash: string;
  status: 'running' | 'finished' | 'failed';
  started_at: string;
  finished_at?: string;
  seconds?: number;
  error?: string;
}

/** Keyed by stage, `eval`, and `round_<k>/<step>` for the steps of the iterative rounds. */
export type PipelineState = Partial<Record<PipelineStage | 'eval' | `round_${number}/${string}`, StageState>>;

/** JSON with object keys sorted at every level, so equal configs give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Hash of a resolved stage config (what config.resolved.yaml holds, without its comments).
 * `train.resume` is left out: it says how to start, not what to compute.
 */
export function configHash(stage: string, config: unknown): string {
  const copy = structuredClone(config) as Record<string, unknown>;
  const train = copy['train'];
  if (train !== null && typeof train === 'object') delete (train as Record<string, unknown>)['resume'];
  return createHash('sha256').update(canonicalJson({ stage, ...copy })).digest('hex').slice(0, 16);
}

export function readPipelineState(runDir: string): PipelineState {
  const path = join(runDir, PIPELINE_STATE_FILE);
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PipelineState;
  } catch {
    return {}; // a damaged state only costs re-running stages
  }
}

export function writePipelineState(runDir: string, state: PipelineState): void {
  writeFileAtomic(join(runDir, PIPELINE_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
}
