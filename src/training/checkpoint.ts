import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../model/io/safetensors.js';

/**
 * Training checkpoints: `<runDir>/checkpoints/step_<N>/` holding the weights (model or adapter),
 * `optimizer.safetensors` and `trainer_state.json`. A checkpoint is written into
 * `checkpoints/.tmp-step_<N>`, every file fsynced, then renamed into place, so a folder named
 * `step_<N>` is always complete: a crash leaves at worst a `.tmp-` folder, which is ignored and
 * cleaned up by the next save.
 */

export const CHECKPOINTS_DIR = 'checkpoints';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
const TMP_PREFIX = '.tmp-';
const STEP_DIR = /^step_(\d+)$/;

/**
 * `trainer_state.json`: HF Trainer's names where they overlap (`global_step`, `epoch`, `max_steps`,
 * `log_history`, `best_metric`, `best_model_checkpoint`), plus ours (`rng_state`, `data_cursor`,
 * and whatever a stage needs to resume exactly, e.g. `kl_coef`).
 */
export interface TrainerState {
  global_step: number;
  epoch: number;
  max_steps?: number;
  log_history: Array<Record<string, number | string | null>>;
  best_metric?: number | null;
  best_model_checkpoint?: string | null;
  /** `Rng.getState()`. */
  rng_state?: number[];
  /** Where the data loader resumes (e.g. `{ epoch, index, order_seed }`). */
  data_cursor?: unknown;
  [key: string]: unknown;
}

export interface CheckpointContents {
  /** Weights to save as `tensorsFile` (a model or an adapter); optional when `writeExtra` writes them. */
  tensors?: Map<string, NamedTensor>;
  /** Default `model.safetensors`; `adapter_model.safetensors` for LoRA. */
  tensorsFile?: string;
  optimizer: Map<string, NamedTensor>;
  trainerState: TrainerState;
  /** Writes further files into the (temporary) checkpoint folder: config.json, adapter_config.json, … */
  writeExtra?: (dir: string) => void;
}

export interface CheckpointInfo {
  step: number;
  path: string;
}

/**
 * Write `step_<global_step>` atomically under `<runDir>/checkpoints`, then delete all but the
 * newest `keepLast` complete checkpoints (0 or less keeps all). Returns the checkpoint's path.
 */
export function saveCheckpoint(runDir: string, contents: CheckpointContents, opts: { keepLast?: number } = {}): string {
  const step = contents.trainerState.global_step;
  if (!Number.isInteger(step) || step < 0) throw new Error(`saveCheckpoint: global_step must be a non-negative integer, got ${step}`);
  const root = join(runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  removeTempFolders(root);

  const tmp = join(root, `${TMP_PREFIX}step_${step}`);
  mkdirSync(tmp);
  if (contents.tensors) writeSafetensors(join(tmp, contents.tensorsFile ?? 'model.safetensors'), contents.tensors);
  writeSafetensors(join(tmp, OPTIMIZER_FILE), contents.optimizer);
  writeFileSync(join(tmp, TRAINER_STATE_FILE), JSON.stringify(sortKeys(contents.trainerState), null, 2) + '\n');
  contents.writeExtra?.(tmp);
  fsyncTree(tmp);

  const final = join(root, `step_${step}`);
  // Re-saving a step (e.g. the final save after a signal at a checkpointed step): swap, then drop the old one.
  const old = existsSync(final) ? join(root, `${TMP_PREFIX}old-step_${step}`) : null;
  if (old) renameSync(final, old);
  renameSync(tmp, final);
  fsyncPath(root);
  if (old) rmSync(old, { recursive: true, force: true });

  if (opts.keepLast !== undefined && opts.keepLast > 0) {
    const all = listCheckpoints(runDir);
    for (const c of all.slice(0, Math.max(0, all.length - opts.keepLast))) {
      // Rename first: a kill during a recursive delete would leave a half-deleted step_N folder;
      // a half-deleted temp folder is swept by the next save.
      const doomed = join(root, `${TMP_PREFIX}del-${basename(c.path)}`);
      renameSync(c.path, doomed);
      rmSync(doomed, { recursive: true, force: true });
    }
  }
  return final;
}

/** Complete checkpoints under `<runDir>/checkpoints`, oldest first (temp and torn folders skipped). */
export function listCheckpoints(runDir: string): CheckpointInfo[] {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  const found: CheckpointInfo[] = [];
  for (const name of readdirSync(root)) {
    const m = STEP_DIR.exec(name);
    if (!m) continue;
    const path = join(root, name);
    const step = Number(m[1]);
    if (isComplete(path, step)) found.push({ step, path });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint's path, or null (for `train.resume: auto`). */
export function findLatestCheckpoint(runDir: string): string | null {
  const all = listCheckpoints(runDir);
  return all.length > 0 ? all[all.length - 1]!.path : null;
}

/** Read a checkpoint folder; `tensors` is present when `tensorsFile` exists in it. */
export function loadCheckpoint(
  dir: string,
  opts: { tensorsFile?: string } = {},
): { tensors?: Map<string, NamedTensor>; optimizer: Map<string, NamedTensor>; trainerState: TrainerState } {
  const statePath = join(dir, TRAINER_STATE_FILE);
  const trainerState = readTrainerState(statePath);
  if (trainerState === null) throw new UserError(`${statePath}: missing or not a valid trainer state (needs global_step and epoch)`);
  const optPath = join(dir, OPTIMIZER_FILE);
  if (!existsSync(optPath)) throw new UserError(`${optPath}: missing (checkpoint ${dir} is incomplete)`);
  const optimizer = readSafetensors(optPath).tensors;
  const tensorsPath = join(dir, opts.tensorsFile ?? 'model.safetensors');
  const tensors = existsSync(tensorsPath) ? readSafetensors(tensorsPath).tensors : undefined;
  return tensors ? { tensors, optimizer, trainerState } : { optimizer, trainerState };
}

function isComplete(path: string, step: number): boolean {
  if (!statSync(path).isDirectory() || !existsSync(join(path, OPTIMIZER_FILE))) return false;
  const state = readTrainerState(join(path, TRAINER_STATE_FILE));
  return state !== null && state.global_step === step;
}

function readTrainerState(path: string): TrainerState | null {
  if (!existsSync(path)) return null;
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as TrainerState;
    if (typeof s !== 'object' || s === null || typeof s.global_step !== 'number' || typeof s.epoch !== 'number') return null;
    return s;
  } catch {
    return null;
  }
}

function removeTempFolders(root: string): void {
  for (const name of readdirSync(root)) {
    if (name.startsWith(TMP_PREFIX)) rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** fsync every file below `dir`, then the folders themselves (so the renames that follow are durable). */
export function fsyncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) fsyncTree(p);
    else if (entry.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** HF writes trainer_state.json with sorted keys; so do we (top level). */
function sortKeys<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}
