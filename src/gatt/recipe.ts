/**
 * The GAtt recipe, top to bottom: setup → synthesise → fine-tune (the SFT recipe, loss on the last
 * turn only) → measure adherence before and after → done.
 *
 * Output folder (`output_dir`, runs/<name>/gatt/):
 *   input_model/          the chat model with model.adapter merged in (only when an adapter is given)
 *   synth/gatt_train.jsonl  the synthesised dialogues (SFT `messages` + instruction ids + train_on: last)
 *   synth/mix_train.jsonl  with data.mix: the synthesised rows + the plain-answer rows mixed in (what is trained on)
 *   synth/stats.json       follow / repair rates of the sampled answers, and the synthesis settings
 *   synth/gatt.resolved.yaml  this stage's full config
 *   config.resolved.yaml, metrics.jsonl, checkpoints/, final/   written by the SFT recipe
 *   adherence.json         adherence by turn, before and after GAtt
 */
import { join } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { writeFileAtomic } from '../config/index.js';
import { initEngine } from '../engine/index.js';
import type { RunContext } from '../tracking/index.js';
import { prepareInputModel } from '../training/input-model.js';
import { acquireRunLock } from '../training/lock.js';
import type { StopSignal } from '../training/stop-signal.js';
import { ADHERENCE_FILE, adherenceOf, summary } from './adherence.js';
import type { GattConfig } from './config.js';
import { formatAdherenceTable, type AdherenceTable } from './evaluate.js';
import { mixedTrainFile } from './mix.js';
import { sftConfigFor, type GattSftConfig } from './sft-config.js';
import { greedyAnswerer, synthesize, type GattRules, type SynthResult } from './synth-stage.js';

export { ADHERENCE_FILE, summary } from './adherence.js';
export { MIX_FILE } from './mix.js';
export { sftConfigFor, type GattSftConfig } from './sft-config.js';
export { STATS_FILE, SYNTH_DIR, SYNTH_FILE, type GattRules, type SynthResult } from './synth-stage.js';

/** Passed on to the fine-tuning recipe. */
export interface GattHooks {
  /** Nest the stage's MLflow run under this run (the pipeline's). */
  parentRunId?: string;
  /** After every optimizer step of the fine-tuning, with that step's metrics. */
  onStep?: (step: number, metrics: Record<string, number>) => void;
  stopSignal?: StopSignal;
  /** Show progress on stdout (default true). */
  progress?: boolean;
  context?: Partial<RunContext>;
  log?: (message: string) => void;
}

/** What GAtt needs of its fine-tuning step's result (the SFT recipe's result has this and more). */
export interface FineTuneResult {
  outputDir: string;
  finalDir: string;
}

/** The fine-tuning step: the SFT recipe, handed in by the pipeline or the CLI (a stage never imports another). */
export type FineTune<R extends FineTuneResult = FineTuneResult> = (config: ResolvedConfig<GattSftConfig>, hooks: GattHooks) => Promise<R>;

export interface GattOptions<R extends FineTuneResult = FineTuneResult> extends GattHooks, GattRules {
  fineTune: FineTune<R>;
}

export interface GattResult<R extends FineTuneResult = FineTuneResult> {
  synth: SynthResult;
  sft: R;
  /** Adherence before (the input model) and after GAtt; null when gatt.evaluate is false. */
  adherence: { before: AdherenceTable; after: AdherenceTable } | null;
}

/**
 * `rlhf gatt synth`: setup and synthesis only, plus the fine-tuning file with data.mix's rows (what
 * `rlhf gatt` would train on, and what an export to TRL/OpenRLHF trains on): `trainPath`.
 */
export async function runGattSynthesis(
  resolved: ResolvedConfig<GattConfig>,
  opts: GattRules & Pick<GattHooks, 'log'>,
): Promise<SynthResult & { trainPath: string }> {
  const cfg = resolved.config;
  const log = opts.log ?? defaultLog;
  const lock = acquireRunLock(cfg.output_dir, 'gatt'); // before input_model/ or synth/ is read or replaced
  try {
    await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads });
    const inputModel = prepareInputModel(cfg, { label: 'gatt', log });
    const synth = await synthesize(resolved, inputModel, opts, log);
    return { ...synth, trainPath: await mixedTrainFile(cfg, synth.path, greedyAnswerer(cfg, inputModel, log), log) };
  } finally {
    lock.release();
  }
}

/** `rlhf gatt`: synthesise, fine-tune with the SFT recipe, measure adherence before and after. */
export async function runGatt<R extends FineTuneResult>(resolved: ResolvedConfig<GattConfig>, opts: GattOptions<R>): Promise<GattResult<R>> {
  const cfg = resolved.config;
  const log = opts.log ?? defaultLog;
  // One run per folder, held across synthesis, the SFT recipe (which re-enters it) and evaluation.
  const lock = acquireRunLock(cfg.output_dir, 'gatt');
  try {
    return await gattLocked(resolved, opts, log);
  } finally {
    lock.release();
  }
}

async function gattLocked<R extends FineTuneResult>(resolved: ResolvedConfig<GattConfig>, opts: GattOptions<R>, log: (m: string) => void): Promise<GattResult<R>> {
  const cfg = resolved.config;
  const { fineTune, checkers, repair: _repair, ...hooks } = opts;

  // ── setup ──────────────────────────────────────────────────────────────────────────────────
  await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads });
  const inputModel = prepareInputModel(cfg, { label: 'gatt', log });

  // ── synthesise ─────────────────────────────────────────────────────────────────────────────
  const synth = await synthesize(resolved, inputModel, opts, log);

  // ── mix: plain-answer rows beside the dialogues, so single answers do not get worse ───────
  const trainFile = await mixedTrainFile(cfg, synth.path, greedyAnswerer(cfg, inputModel, log), log);

  // ── fine-tune: the SFT recipe on the synthesised (+ mixed) rows, loss on the last turn only ──
  const sft = await fineTune(sftConfigFor(resolved, inputModel, trainFile), { ...hooks, log });

  // ── measure ────────────────────────────────────────────────────────────────────────────────
  let adherence: GattResult['adherence'] = null;
  if (cfg.gatt.evaluate) {
    const before = await adherenceOf(cfg, checkers, inputModel, null);
    const after = await adherenceOf(cfg, checkers, inputModel, cfg.lora.enabled ? sft.finalDir : null, cfg.lora.enabled ? null : sft.finalDir);
    adherence = { before, after };
    writeFileAtomic(join(sft.outputDir, ADHERENCE_FILE), JSON.stringify({ before: summary(before), after: summary(after) }, null, 2) + '\n');
    log(formatAdherenceTable(before, cfg.gatt.eval_show_turns, 'without GAtt: instruction adherence (%) by turn'));
    log(formatAdherenceTable(after, cfg.gatt.eval_show_turns, 'with GAtt: instruction adherence (%) by turn'));
  }
  return { synth, sft, adherence };
}

// ───────────────────────────── steps ─────────────────────────────

function defaultLog(message: string): void {
  process.stderr.write(message + '\n');
}
