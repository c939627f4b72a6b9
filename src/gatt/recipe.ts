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
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { writeFileAtomic, writeResolvedConfig } from '../config/index.js';
import { readAllRecords, writeJsonl } from '../data/index.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { mergeAdapterFolder } from '../lora/merge.js';
import { loadHfModel, resolveModelPath } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { loadTokenizer, pickTemplate, tokenizeDialogue, type ChatMessage } from '../tokenizer/index.js';
import type { RunContext } from '../tracking/index.js';
import { acquireRunLock } from '../training/lock.js';
import type { StopSignal } from '../training/stop-signal.js';
import type { GattConfig } from './config.js';
import { formatAdherenceTable, type AdherenceTable } from './evaluate.js';
import { loadInstructionSet, type InstructionCheckers, type InstructionSet } from './instructions.js';
import { drawMixRows, mixCount, readMixRows } from './mix.js';
import { modelAdherence } from './model-eval.js';
import { modelReplySampler } from './sampler.js';
import { rewardModelScorer } from './reward-scorer.js';
import { readDialogueSeeds, splitSeeds } from './seeds.js';
import { synthesizeGatt, type DialogueSeed, type ReplyRepair, type SynthesisStats } from './synthesize.js';

export const SYNTH_DIR = 'synth';
export const SYNTH_FILE = 'gatt_train.jsonl';
export const STATS_FILE = 'stats.json';
export const ADHERENCE_FILE = 'adherence.json';
export const MIX_FILE = 'mix_train.jsonl';

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

/**
 * What the pipeline or the CLI hands the stage: the instruction checkers (the world's) and, for
 * gatt.repair_with_world_rules, the rewrite rules with the instruction ids they know.
 */
export interface GattRules {
  checkers: InstructionCheckers;
  repair?: { readonly ids: readonly string[]; apply: ReplyRepair };
}

export interface GattOptions<R extends FineTuneResult = FineTuneResult> extends GattHooks, GattRules {
  fineTune: FineTune<R>;
}

export interface SynthResult {
  path: string;
  stats: SynthesisStats;
  /** False when an earlier synthesis with the same settings was reused. */
  fresh: boolean;
}

export interface GattResult<R extends FineTuneResult = FineTuneResult> {
  synth: SynthResult;
  sft: R;
  /** Adherence before (the input model) and after GAtt; null when gatt.evaluate is false. */
  adherence: { before: AdherenceTable; after: AdherenceTable } | null;
}

/** `rlhf gatt synth`: setup and synthesis only. */
export async function runGattSynthesis(resolved: ResolvedConfig<GattConfig>, opts: GattRules & Pick<GattHooks, 'log'>): Promise<SynthResult> {
  const cfg = resolved.config;
  const log = opts.log ?? defaultLog;
  const lock = acquireRunLock(cfg.output_dir, 'gatt'); // before input_model/ or synth/ is read or replaced
  try {
    await initEngine({ backend: cfg.engine.backend, threads: cfg.engine.threads });
    const inputModel = prepareInputModel(cfg, log);
    return await synthesize(resolved, inputModel, opts, log);
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
  const inputModel = prepareInputModel(cfg, log);

  // ── synthesise ─────────────────────────────────────────────────────────────────────────────
  const synth = await synthesize(resolved, inputModel, opts, log);

  // ── mix: plain-answer rows beside the dialogues, so single answers do not get worse ───────
  const trainFile = await mixedTrainFile(cfg, synth.path, log);

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

/** The chat model folder to sample from and fine-tune: model.path, or model.path + adapter merged. */
function prepareInputModel(cfg: GattConfig, log: (m: string) => void): { modelDir: string; tokenizerDir: string } {
  const base = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  if (!existsSync(join(base, 'config.json'))) {
    throw new UserError(`model.path: ${cfg.model.path} has no config.json (an HF model folder is needed, e.g. the SFT stage's final/merged)`);
  }
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  if (cfg.model.adapter === null) return { modelDir: base, tokenizerDir };
  const adapter = resolve(resolveDataPath(cfg.model.adapter));
  const merged = resolve(cfg.output_dir, 'input_model');
  rmSync(merged, { recursive: true, force: true });
  mergeAdapterFolder(base, adapter, merged);
  log(`gatt: merged adapter ${adapter} into ${merged}`);
  return { modelDir: merged, tokenizerDir: cfg.tokenizer.path === null ? merged : tokenizerDir };
}

async function synthesize(
  resolved: ResolvedConfig<GattConfig>,
  input: { modelDir: string; tokenizerDir: string },
  rules: GattRules,
  log: (m: string) => void,
): Promise<SynthResult> {
  const cfg = resolved.config;
  const dir = resolve(cfg.output_dir, SYNTH_DIR);
  const path = join(dir, SYNTH_FILE);
  const settings = synthesisSettings(cfg, input);
  const previous = readStats(join(dir, STATS_FILE));
  if (previous && existsSync(path) && JSON.stringify(previous.settings) === JSON.stringify(settings)) {
    log(`gatt: reusing ${path} (same synthesis settings)`);
    return { path, stats: previous.stats, fresh: false };
  }

  const set = loadInstructionSet(resolveDataPath(cfg.data.instructions), rules.checkers);
  const repair = cfg.gatt.repair_with_world_rules ? repairFor(set, rules, cfg.data.instructions) : null;
  const seeds = await trainingSeeds(cfg);
  const tokenizer = await loadTokenizer(input.tokenizerDir);
  const template = pickTemplate(cfg.tokenizer.template, tokenizer);
  if (cfg.gatt.best_of > 1 && cfg.gatt.reward_model === null) {
    throw new UserError(`gatt.best_of: ${cfg.gatt.best_of} candidates need gatt.reward_model (a reward-model folder) to rank them`);
  }
  const root = new Rng(cfg.engine.seed);
  const instructionRng = root.fork();
  const samplingRng = root.fork();
  let result: Awaited<ReturnType<typeof synthesizeGatt>>;
  const model = loadHfModel(input.modelDir);
  let reward: Awaited<ReturnType<typeof rewardModelScorer>> | null = null;
  try {
    if (cfg.gatt.best_of > 1) {
      reward = await rewardModelScorer(resolve(resolveDataPath(cfg.gatt.reward_model!)), {
        template: cfg.tokenizer.template,
        batchSize: cfg.gatt.batch_size,
        ...(cfg.gatt.context_tokens !== null ? { maxTokens: cfg.gatt.context_tokens + cfg.gatt.max_new_tokens } : {}),
      });
    }
    const sampler = modelReplySampler(model, tokenizer, {
      template,
      maxNewTokens: cfg.gatt.max_new_tokens,
      temperature: cfg.gatt.temperature,
      topP: cfg.gatt.top_p,
      batchSize: cfg.gatt.batch_size,
      rng: samplingRng,
      ...(cfg.gatt.context_tokens !== null ? { maxPromptTokens: cfg.gatt.context_tokens } : {}),
      ...(reward ? { bestOf: { k: cfg.gatt.best_of, score: reward.score } } : {}),
    });
    log(`gatt: sampling answers for ${seeds.length} dialogues (up to ${cfg.gatt.max_turns} turns) from ${input.modelDir}`);
    const started = Date.now();
    result = await synthesizeGatt(seeds, sampler, instructionRng, {
      instructions: set,
      maxFamilies: cfg.gatt.max_families,
      shortFormProb: cfg.gatt.short_form_prob,
      maxTurns: cfg.gatt.max_turns,
      rowsPerDialogue: cfg.gatt.rows_per_dialogue,
      // The world's stand-in for a stronger teacher: see gatt.repair_with_world_rules.
      ...(repair ? { repair } : {}),
      countTokens: (m: readonly ChatMessage[]) => tokenizeDialogue(tokenizer, m, { template, strategy: 'train_on_last' }).inputIds.length,
      maxTokens: cfg.data.max_length,
    });
    log(
      `gatt: ${result.stats.rows} rows from ${result.stats.answers} answers in ${((Date.now() - started) / 1000).toFixed(0)}s; ` +
        `followed the instruction ${(100 * result.stats.followRate).toFixed(1)}%, repaired ${(100 * result.stats.repairRate).toFixed(1)}%, ` +
        `still broken ${(100 * result.stats.brokenRate).toFixed(1)}%` +
        (result.stats.tooLongRows > 0 ? `; ${result.stats.tooLongRows} rows left out: instruction + last turn exceed data.max_length` : ''),
    );
  } finally {
    model.dispose();
    reward?.dispose();
  }

  // Written under temporary names and renamed, so a crash never leaves a half-written dataset.
  const tmp = join(dir, `.${SYNTH_FILE}.${process.pid}.tmp`);
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, STATS_FILE), { force: true }); // stats.json last: its presence marks a complete dataset
  await writeJsonl(tmp, result.rows);
  renameSync(tmp, path);
  writeResolvedConfig(join(dir, 'gatt.resolved.yaml'), resolved);
  writeFileAtomic(join(dir, STATS_FILE), JSON.stringify({ settings, stats: result.stats }, null, 2) + '\n');
  return { path, stats: result.stats, fresh: true };
}

/**
 * The fine-tuning rows: the synthesised file itself when data.mix is empty, else
 * synth/mix_train.jsonl — the synthesised rows, then round(rows × data.mix_ratio) rows of the mix
 * files (seeded from engine.seed, so a resumed run trains on the same file).
 */
async function mixedTrainFile(cfg: GattConfig, synthPath: string, log: (m: string) => void): Promise<string> {
  if (cfg.data.mix.length === 0 || cfg.data.mix_ratio === 0) return synthPath;
  const synthRows = (await readAllRecords(synthPath)).rows.map((r) => r.value as Record<string, unknown>);
  const pool = await readMixRows(cfg.data.mix.map((f) => resolveDataPath(f)));
  const mixed = drawMixRows(pool, mixCount(synthRows.length, cfg.data.mix_ratio), (cfg.engine.seed ^ 0x6d697800) >>> 0);
  const path = join(dirname(synthPath), MIX_FILE);
  await writeRowsAtomic(path, [...synthRows, ...mixed.map((r) => ({ messages: r.messages }))]);
  log(`gatt: fine-tuning on ${synthRows.length} synthesised rows + ${mixed.length} plain rows from ${cfg.data.mix.join(', ')} (${pool.length} there) → ${path}`);
  return path;
}

/** Everything synthesis depends on; equal settings mean an earlier dataset can be reused. */
function synthesisSettings(cfg: GattConfig, input: { modelDir: string; tokenizerDir: string }): Record<string, unknown> {
  const { evaluate: _e, eval_cases: _c, eval_turns: _t, eval_show_turns: _s, ...gatt } = cfg.gatt;
  const { eval_split: _es, eval_max_rows: _em, packing: _p, mix: _m, mix_ratio: _mr, ...data } = cfg.data;
  return { model: input.modelDir, adapter: cfg.model.adapter, tokenizer: input.tokenizerDir, template: cfg.tokenizer.template, seed: cfg.engine.seed, data, gatt };
}

function readStats(path: string): { settings: unknown; stats: SynthesisStats } | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { settings: unknown; stats: SynthesisStats };
  } catch {
    return null;
  }
}

async function trainingSeeds(cfg: GattConfig): Promise<DialogueSeed[]> {
  const all = await readDialogueSeeds(resolveDataPath(cfg.data.dialogues));
  const { train } = splitSeeds(all, cfg.data.held_out);
  return cfg.data.max_dialogues === null ? train : train.slice(0, cfg.data.max_dialogues);
}

/** Repair rewrites with the world's rules, which know only the world's instruction ids. */
function repairFor(set: InstructionSet, rules: GattRules, file: string): ReplyRepair {
  if (!rules.repair) {
    throw new UserError("gatt.repair_with_world_rules: no rewrite rules were handed to this run (the pipeline and `rlhf gatt` pass the world's); set gatt.repair_with_world_rules=false");
  }
  const known = rules.repair.ids;
  const unknown = set.instructions.filter((i) => !known.includes(i.id)).map((i) => i.id);
  if (unknown.length > 0) {
    throw new UserError(
      `gatt.repair_with_world_rules: the world's rules cannot rewrite answers for instructions ${unknown.join(', ')} of ${file}; ` +
        'set gatt.repair_with_world_rules=false',
    );
  }
  return rules.repair.apply;
}

/** The SFT stage's config for the fine-tuning step: this config's shared sections, the synthesised data, train_on_last. */
export function sftConfigFor(
  resolved: ResolvedConfig<GattConfig>,
  input: { modelDir: string; tokenizerDir: string },
  trainFile: string,
): ResolvedConfig<GattSftConfig> {
  return { stage: 'sft', config: sftConfigOf(resolved.config, input, trainFile), file: resolved.file, overrides: resolved.overrides };
}

/**
 * The config object itself; its type is what the fine-tuning step receives. The wiring hands in the
 * SFT recipe, so the typecheck there proves this object is a complete SFT config.
 */
function sftConfigOf(cfg: GattConfig, input: { modelDir: string; tokenizerDir: string }, trainFile: string) {
  const { gatt: _gatt, model: _model, data, tokenizer, ...shared } = cfg;
  return {
    ...shared,
    model: { path: input.modelDir, frozen_dtype: 'float32' as const },
    tokenizer: { path: input.tokenizerDir, template: tokenizer.template },
    data: {
      train: trainFile,
      eval: null,
      eval_split: data.eval_split,
      eval_max_rows: data.eval_max_rows,
      strategy: 'train_on_last' as const,
      max_length: data.max_length,
      // Rows were trimmed to max_length at synthesis; should one still be longer, keep its trained end.
      truncation: 'keep_end' as const,
      packing: data.packing,
      on_bad_row: 'error' as const,
    },
  };
}

/** The SFT config GAtt fine-tunes with. */
export type GattSftConfig = ReturnType<typeof sftConfigOf>;

async function adherenceOf(
  cfg: GattConfig,
  checkers: InstructionCheckers,
  input: { modelDir: string; tokenizerDir: string },
  adapterDir: string | null,
  fullModelDir: string | null = null,
): Promise<AdherenceTable> {
  const all = await readDialogueSeeds(resolveDataPath(cfg.data.dialogues));
  // With no held-out seeds the evaluation reuses training seeds (the instruction is still only in turn 1).
  const held = cfg.data.held_out > 0 ? splitSeeds(all, cfg.data.held_out).eval : all;
  return modelAdherence({
    modelDir: fullModelDir ?? input.modelDir,
    adapterDir,
    tokenizerDir: input.tokenizerDir,
    template: cfg.tokenizer.template,
    seeds: held,
    instructions: loadInstructionSet(resolveDataPath(cfg.data.instructions), checkers),
    cases: cfg.gatt.eval_cases,
    turns: cfg.gatt.eval_turns,
    maxNewTokens: cfg.gatt.max_new_tokens,
    batchSize: cfg.gatt.batch_size,
    contextTokens: cfg.gatt.context_tokens,
  });
}

/** adherence.json: percentages per family and overall at every turn. */
export function summary(table: AdherenceTable): Record<string, unknown> {
  const pct = (cells: { followed: number; count: number }[]) => cells.map((c) => (c.count === 0 ? null : (100 * c.followed) / c.count));
  return {
    turns: table.turns,
    dialogues: table.all[0]?.count ?? 0,
    all: pct(table.all),
    by_family: Object.fromEntries(Object.entries(table.byFamily).map(([f, cells]) => [f, pct(cells)])),
  };
}

function defaultLog(message: string): void {
  process.stderr.write(message + '\n');
}
