/**
 * The shared stage harness: what every recipe needs around its training loop, as plain functions.
 *
 *   const run = await openStageRun({ stage: 'sft', outputDir, resolved, tracking, resume });
 *   try {
 *     if (run.resumeFrom) ({ step, dataCursor } = restoreStageCheckpoint(run.resumeFrom, { weights, optimizer, rng }));
 *     for (...) {
 *       ... one step ...
 *       if (await run.stop.poll()) { saveStageCheckpoint(run.dir, {...}); throw run.stoppedError(step); }
 *     }
 *     writeFolderAtomic(join(run.dir, 'final'), (tmp) => saveAdapter(model, tmp));
 *     await run.close('FINISHED');
 *   } catch (e) {
 *     await run.close(closeStatusFor(e));
 *     throw e;
 *   }
 *
 * Nothing is half-written: config.resolved.yaml, checkpoints and final folders are written to a
 * temporary name and renamed into place.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/load.js';
import { writeFileAtomic, writeResolvedConfig } from '../config/write.js';
import type { Rng, RngState } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { readSafetensors, writeSafetensors, type NamedTensor } from '../model/io/safetensors.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapterConfig, adapterStateDict, loadAdapterWeights } from '../lora/peft-io.js';
import type { LoraHost } from '../lora/inject.js';
import { openTracker, flattenParams, METRICS_FILE, type EndStatus, type RunContext, type Tracker } from '../tracking/index.js';
import type { AdamW } from './adamw.js';
import {
  CHECKPOINTS_DIR,
  TRAINER_STATE_FILE,
  findLatestCheckpoint,
  fsyncPath,
  fsyncTree,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { acquireRunLock, type RunLock } from './lock.js';
import { StopSignal } from './stop-signal.js';

export const RESOLVED_CONFIG_FILE = 'config.resolved.yaml';
export const FINAL_DIR = 'final';

// ───────────────────────────── run folder ─────────────────────────────

/**
 * Free disk a training run needs, checked before it starts (one estimate for every stage): each kept
 * checkpoint, and the one being written, holds the trainable weights and AdamW's two moments; the
 * final folder holds `savedWeights` (an adapter, a merged or whole model, a base copy). Float32,
 * a fifth to spare. `keepLast` null (keep all) is counted as 3.
 */
export function runDiskBytes(a: { trainable: number; savedWeights: number; keepLast: number | null }): number {
  return Math.ceil(4 * (((a.keepLast ?? 3) + 1) * 3 * a.trainable + a.savedWeights) * 1.2);
}

/**
 * Make `dir` and check, before any training, that it is writable and that its file system has at
 * least `minFreeBytes` free (checkpoints failing after an hour of training is the thing to avoid).
 */
export function prepareRunDir(dir: string, opts: { minFreeBytes?: number } = {}): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    // access() can lie (read-only mounts, ACLs): really write something.
    const probe = join(dir, `.write-probe-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new UserError(`output_dir ${dir}: cannot write there (${(e as Error).message}); choose another output_dir`);
  }
  const need = opts.minFreeBytes ?? 0;
  if (need > 0) {
    const free = freeBytes(dir);
    if (free < need) {
      throw new UserError(
        `output_dir ${dir}: only ${formatBytes(free)} free on its disk, this run needs about ${formatBytes(need)} ` +
          `(checkpoints + final output); free some space, lower checkpoint.keep_last, or choose another output_dir`,
      );
    }
  }
}

/** Bytes available to this (unprivileged) user on the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Write a whole folder at once: `write(tmp)` fills a temporary sibling, which is fsynced and renamed
 * to `dir` (replacing an older one). A crash or an error leaves `dir` as it was.
 */
export function writeFolderAtomic(dir: string, write: (tmp: string) => void): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.tmp-${basename(dir)}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    write(tmp);
    fsyncTree(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = existsSync(dir) ? join(parent, `.old-${basename(dir)}-${process.pid}`) : null;
  if (old) {
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  fsyncPath(parent);
  if (old) rmSync(old, { recursive: true, force: true });
}


// ───────────────────────────── resume ─────────────────────────────

/**
 * `train.resume` → the checkpoint folder to continue from, or null to start fresh.
 * `auto`: the newest complete checkpoint under `runDir` (null if none); `never`: null;
 * anything else: a checkpoint folder path, which must exist and be complete.
 */
export function resolveResume(resume: string, runDir: string): string | null {
  if (resume === 'never') return null;
  if (resume === 'auto') return findLatestCheckpoint(runDir);
  const path = resolve(resume);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new UserError(`train.resume: ${resume} is not a folder (use auto, never, or a checkpoints/step_<N> folder)`);
  }
  if (!existsSync(join(path, TRAINER_STATE_FILE))) {
    throw new UserError(`train.resume: ${resume} has no ${TRAINER_STATE_FILE}; it is not a checkpoint folder (checkpoints/step_<N>)`);
  }
  return path;
}

/**
 * Leftovers of an earlier run in the same folder that would mix with a fresh one: its checkpoints
 * (keep_last would count them), metrics.jsonl (appended to) and final/. Removed when starting fresh.
 */
function clearStaleOutputs(runDir: string, log: (msg: string) => void): void {
  const stale = [CHECKPOINTS_DIR, METRICS_FILE, FINAL_DIR].map((n) => join(runDir, n)).filter((p) => existsSync(p));
  if (stale.length === 0) return;
  log(`starting fresh in ${runDir}: removing the earlier run's ${stale.map((p) => basename(p)).join(', ')}`);
  for (const p of stale) rmSync(p, { recursive: true, force: true });
}

/** Drop metrics.jsonl rows logged after `step` (the interrupted run went past its last checkpoint). */
export function trimMetricsAfter(runDir: string, step: number): void {
  const path = join(runDir, METRICS_FILE);
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.trim() === '') return false;
      try {
        return (JSON.parse(line) as { step?: number }).step! <= step;
      } catch {
        return false; // a torn last line from a crash
      }
    });
  writeFileAtomic(path, kept.map((l) => l + '\n').join(''));
}

// ───────────────────────────── the stage run ─────────────────────────────

export interface TrackingSettings {
  uri: string;
  experiment: string;
  run_name: string;
  enabled: boolean;
}

export interface StageRunOptions {
  stage: string;
  /** The stage's run folder (`output_dir`). */
  outputDir: string;
  /** Written to config.resolved.yaml and logged as params. */
  resolved: ResolvedConfig;
  tracking: TrackingSettings;
  /** `train.resume`: auto | never | checkpoint path. */
  resume: string;
  /** Free disk the run needs (0: no check). */
  minFreeBytes?: number;
  /** Tests: deterministic tracking context. */
  context?: Partial<RunContext>;
  /** Tests: a StopSignal wired to a fake process. */
  stopSignal?: StopSignal;
  /** The pipeline's MLflow run: the stage's run is nested under it (`mlflow.parentRunId`). */
  parentRunId?: string;
  log?: (msg: string) => void;
}

export interface StageRun {
  /** Absolute run folder. */
  readonly dir: string;
  readonly tracker: Tracker;
  /** The checkpoint to restore before training, or null for a fresh start. */
  readonly resumeFrom: string | null;
  /** Set by SIGINT/SIGTERM; check it after each step. */
  readonly stop: StopSignal;
  /** The error to throw after the stop checkpoint is written (exit code 130 / 143). */
  stoppedError(step: number, checkpoint: string): StageStopped;
  /** End the tracked run and remove the signal handlers; safe to call twice. */
  close(status: EndStatus): Promise<void>;
}

/** Training stopped by a signal after writing a checkpoint; its exitCode is 130 (SIGINT) or 143 (SIGTERM). */
export class StageStopped extends UserError {}

/** MLflow end status for an error leaving the recipe. */
export function closeStatusFor(e: unknown): EndStatus {
  return e instanceof StageStopped ? 'KILLED' : 'FAILED';
}

/**
 * Everything before the first step, in an order that fails early: take the folder's lock (a second
 * run into a folder in use is refused before it touches anything), resolve the resume point (a bad
 * path fails before anything is written), check the folder, clear a previous run's leftovers (fresh
 * start) or trim its metrics (resume), write config.resolved.yaml, start tracking and log params,
 * install the SIGINT/SIGTERM handlers.
 */
export async function openStageRun(opts: StageRunOptions): Promise<StageRun> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(msg + '\n'));
  const dir = resolve(opts.outputDir);
  // First of all, before the folder is read, cleared or trimmed: one run per folder.
  const lock = acquireRunLock(dir, opts.stage);
  try {
    return await openLocked(opts, dir, lock, log);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function openLocked(opts: StageRunOptions, dir: string, lock: RunLock, log: (msg: string) => void): Promise<StageRun> {
  const resumeFrom = resolveResume(opts.resume, dir);
  prepareRunDir(dir, opts.minFreeBytes === undefined ? {} : { minFreeBytes: opts.minFreeBytes });

  if (resumeFrom === null) clearStaleOutputs(dir, log);
  else trimMetricsAfter(dir, loadTrainerStateOnly(resumeFrom).global_step);
  writeResolvedConfig(join(dir, RESOLVED_CONFIG_FILE), opts.resolved);

  const tracker = openTracker({
    uri: opts.tracking.enabled ? opts.tracking.uri : null,
    runDir: dir,
    warn: log,
    ...(opts.context ? { context: opts.context } : {}),
  });
  const tags: Record<string, string> = { stage: opts.stage };
  if (resumeFrom) tags['resumed_from'] = resumeFrom;
  await tracker.start({
    experiment: opts.tracking.experiment,
    runName: opts.tracking.run_name,
    tags,
    ...(opts.parentRunId !== undefined ? { parentRunId: opts.parentRunId } : {}),
  });
  await tracker.logParams(flattenParams({ stage: opts.stage, ...(opts.resolved.config as Record<string, unknown>) }));

  const stop = opts.stopSignal ?? new StopSignal();
  let closed = false;
  return {
    dir,
    tracker,
    resumeFrom,
    stop,
    stoppedError(step, checkpoint) {
      return new StageStopped(
        `${stop.signal ?? 'stop'} received: stopped after step ${step}, checkpoint written to ${checkpoint}. ` +
          `Run the same command again to resume (train.resume: auto).`,
        { exitCode: stop.exitCode || 130 },
      );
    },
    async close(status) {
      if (closed) return;
      closed = true;
      stop.dispose();
      try {
        await tracker.end(status);
      } finally {
        lock.release();
      }
    },
  };
}

/** What the CLI, the pipeline and tests may hand any recipe; the CLI passes none of it. */
export interface StageHooks {
  /** Nest the stage's MLflow run under this run (the pipeline's). */
  parentRunId?: string;
  /** Tests: deterministic tracking context. */
  context?: Partial<RunContext>;
  /** Tests: a StopSignal wired to a fake process. */
  stopSignal?: StopSignal;
  log?: (message: string) => void;
  /** After every optimizer step, with that step's metrics (tests send a stop signal from here). */
  onStep?: (step: number, metrics: Record<string, number>) => void;
}

/** The hook's log, or lines on stderr. */
export function stageLog(hooks: Pick<StageHooks, 'log'>): (message: string) => void {
  return hooks.log ?? ((message: string) => void process.stderr.write(message + '\n'));
}

/** The config keys every recipe's run folder reads. */
export interface RecipeRunSettings {
  output_dir: string;
  tracking: TrackingSettings;
  train: { resume: string };
}

/** {@link openStageRun} for a recipe: its output_dir, tracking and train.resume, and the caller's hooks. */
export function openRecipeRun(
  stage: string,
  resolved: ResolvedConfig<RecipeRunSettings>,
  opts: { minFreeBytes?: number; hooks: StageHooks; log: (message: string) => void },
): Promise<StageRun> {
  const cfg = resolved.config;
  const { hooks } = opts;
  return openStageRun({
    stage,
    outputDir: cfg.output_dir,
    resolved,
    tracking: cfg.tracking,
    resume: cfg.train.resume,
    log: opts.log,
    ...(opts.minFreeBytes !== undefined ? { minFreeBytes: opts.minFreeBytes } : {}),
    ...(hooks.context ? { context: hooks.context } : {}),
    ...(hooks.stopSignal ? { stopSignal: hooks.stopSignal } : {}),
    ...(hooks.parentRunId !== undefined ? { parentRunId: hooks.parentRunId } : {}),
  });
}

/** Write `<run>/final` atomically with `write(tmp)` and tag the tracked run with it; returns its path. */
export async function writeFinalFolder(run: StageRun, write: (tmp: string) => void): Promise<string> {
  const finalDir = join(run.dir, FINAL_DIR);
  writeFolderAtomic(finalDir, write);
  await run.tracker.setTag('final_dir', finalDir);
  return finalDir;
}

function loadTrainerStateOnly(dir: string): TrainerState {
  return JSON.parse(readFileSync(join(dir, TRAINER_STATE_FILE), 'utf8')) as TrainerState;
}

// ───────────────────────────── checkpoint bundle ─────────────────────────────

/** How a stage's trainable weights go into and out of a checkpoint. */
export interface WeightsIO {
  /** File name inside the checkpoint: `model.safetensors`, `adapter_model.safetensors`, … */
  file: string;
  /** Copy the weights off the device. */
  read(): Map<string, NamedTensor>;
  /** Put saved weights back; problems name `source`. */
  write(tensors: Map<string, NamedTensor>, source: string): void;
  /** Further files a checkpoint folder should hold (config.json, adapter_config.json). */
  writeExtra?(dir: string): void;
}

/** Weights that are a plain `name → variable` map (full fine-tuning, pretraining, a value head). */
export function variableWeights(
  vars: Map<string, tf.Variable>,
  opts: { file?: string; writeExtra?: (dir: string) => void } = {},
): WeightsIO {
  return {
    file: opts.file ?? 'model.safetensors',
    read: () => {
      const out = new Map<string, NamedTensor>();
      for (const [name, v] of vars) out.set(name, { shape: v.shape.slice(), data: (v.dataSync() as Float32Array).slice() });
      return out;
    },
    write: (tensors, source) => {
      const problems: string[] = [];
      for (const [name, v] of vars) {
        const t = tensors.get(name);
        if (!t) problems.push(`missing ${name}`);
        else if (t.data.length !== v.size) problems.push(`${name} has shape [${t.shape}], expected [${v.shape}]`);
      }
      if (problems.length > 0) throw new UserError(`${source}: weights do not fit the model: ${problems.join('; ')}`);
      tf.tidy(() => {
        for (const [name, v] of vars) v.assign(tf.tensor(tensors.get(name)!.data, v.shape, v.dtype));
      });
    },
    ...(opts.writeExtra ? { writeExtra: opts.writeExtra } : {}),
  };
}

/** A model's LoRA adapters (and modules_to_save) in PEFT format: a checkpoint folder is a loadable adapter. */
export function adapterWeights(model: LoraHost, opts: { baseModelNameOrPath?: string | null; inferenceMode?: boolean } = {}): WeightsIO {
  return {
    file: ADAPTER_WEIGHTS_FILE,
    read: () => adapterStateDict(model),
    write: (tensors, source) => loadAdapterWeights(model, tensors, source),
    writeExtra: (dir) =>
      writeFileSync(
        join(dir, ADAPTER_CONFIG_FILE),
        JSON.stringify(adapterConfig(model, { baseModelNameOrPath: opts.baseModelNameOrPath ?? null, ...(opts.inferenceMode !== undefined ? { inferenceMode: opts.inferenceMode } : {}) }), null, 2) + '\n',
      ),
  };
}

export interface StageCheckpoint {
  /** The trainable weights: one file, or several (PPO: the policy adapter and the critic). */
  weights: WeightsIO | readonly WeightsIO[];
  optimizer: AdamW;
  /** Optimizer steps done (the schedule's position). */
  step: number;
  epoch: number;
  maxSteps?: number;
  /** The recipe's random source (dropout, sampling); restored exactly. */
  rng: Rng;
  /** Where the data loader resumes (e.g. `DataCursor.state`). */
  dataCursor?: unknown;
  /** Stage-specific state to restore (e.g. `kl_coef`, `best_metric`). */
  extra?: Record<string, unknown>;
  logHistory?: Array<Record<string, number | string | null>>;
  /** Keep only the newest this many checkpoints (null/undefined keeps all). */
  keepLast?: number | null;
}

/** Write `<runDir>/checkpoints/step_<step>/` atomically; returns its path. */
export function saveStageCheckpoint(runDir: string, c: StageCheckpoint): string {
  const trainerState: TrainerState = {
    ...(c.extra ?? {}),
    global_step: c.step,
    epoch: c.epoch,
    log_history: c.logHistory ?? [],
    rng_state: c.rng.getState(),
    ...(c.maxSteps !== undefined ? { max_steps: c.maxSteps } : {}),
    ...(c.dataCursor !== undefined ? { data_cursor: c.dataCursor } : {}),
  };
  const [main, ...more] = weightFiles(c.weights);
  return saveCheckpoint(
    runDir,
    {
      tensors: main.read(),
      tensorsFile: main.file,
      optimizer: c.optimizer.exportState(),
      trainerState,
      writeExtra: (dir) => {
        main.writeExtra?.(dir);
        for (const w of more) {
          writeSafetensors(join(dir, w.file), w.read());
          w.writeExtra?.(dir);
        }
      },
    },
    c.keepLast ? { keepLast: c.keepLast } : {},
  );
}

function weightFiles(w: WeightsIO | readonly WeightsIO[]): [WeightsIO, ...WeightsIO[]] {
  const list = Array.isArray(w) ? (w as readonly WeightsIO[]) : [w as WeightsIO];
  if (list.length === 0) throw new Error('a checkpoint needs at least one weights file');
  return list as [WeightsIO, ...WeightsIO[]];
}

export interface RestoredState {
  step: number;
  epoch: number;
  dataCursor: unknown;
  /** The whole trainer_state.json (stage extras included). */
  trainerState: TrainerState;
}

/** Load a checkpoint written by {@link saveStageCheckpoint} into the weights, optimizer and rng. */
export function restoreStageCheckpoint(dir: string, into: { weights: WeightsIO | readonly WeightsIO[]; optimizer: AdamW; rng: Rng }): RestoredState {
  const [main, ...more] = weightFiles(into.weights);
  const { tensors, optimizer, trainerState } = loadCheckpoint(dir, { tensorsFile: main.file });
  if (!tensors) throw new UserError(`${join(dir, main.file)}: missing (checkpoint ${dir} was written by another kind of run?)`);
  main.write(tensors, join(dir, main.file));
  for (const w of more) {
    const path = join(dir, w.file);
    if (!existsSync(path)) throw new UserError(`${path}: missing (checkpoint ${dir} was written by another kind of run?)`);
    w.write(readSafetensors(path).tensors, path);
  }
  try {
    into.optimizer.importState(optimizer);
  } catch (e) {
    throw new UserError(`${dir}: optimizer state does not fit this run (${(e as Error).message})`);
  }
  const rngState = trainerState.rng_state;
  if (!Array.isArray(rngState) || rngState.length !== 4) throw new UserError(`${join(dir, TRAINER_STATE_FILE)}: rng_state missing or not 4 numbers`);
  into.rng.setState(rngState as RngState);
  return { step: trainerState.global_step, epoch: trainerState.epoch, dataCursor: trainerState.data_cursor, trainerState };
}

/**
 * A resumed run's state: `run.resumeFrom` restored into the weights, optimizer and rng, `check`ed
 * (a stage's own refusal: other data, other settings) and logged; null on a fresh start.
 */
export function resumeStage(
  run: StageRun,
  into: { weights: WeightsIO; optimizer: AdamW; rng: Rng },
  opts: { label: string; log: (message: string) => void; check?: (restored: RestoredState, from: string) => void },
): RestoredState | null {
  if (!run.resumeFrom) return null;
  const restored = restoreStageCheckpoint(run.resumeFrom, into);
  opts.check?.(restored, run.resumeFrom);
  opts.log(`${opts.label}: resumed from ${run.resumeFrom} at step ${restored.step}`);
  return restored;
}

/** Steps of the complete checkpoints in a run folder (for logs and tests). */
export function checkpointSteps(runDir: string): number[] {
  return listCheckpoints(runDir).map((c) => c.step);
}
