/**
 * GAtt's synthesis step as the stage runs it: sample answers from the chat model, build the
 * multi-turn dialogues (synthesize.ts), write synth/ atomically, and reuse an earlier dataset made
 * with the same settings.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic, writeResolvedConfig, type ResolvedConfig } from '../config/index.js';
import { writeJsonl } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { loadHfModel } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { loadTokenizer, pickTemplate, tokenizeDialogue, type ChatMessage } from '../tokenizer/index.js';
import type { GattConfig } from './config.js';
import { loadInstructionSet, type InstructionCheckers, type InstructionSet } from './instructions.js';
import { rewardModelScorer } from './reward-scorer.js';
import type { MixAnswerer } from './mix.js';
import { modelReplySampler } from './sampler.js';
import { readDialogueSeeds, splitSeeds } from './seeds.js';
import { synthesizeGatt, type DialogueSeed, type ReplyRepair, type SynthesisStats } from './synthesize.js';

export const SYNTH_DIR = 'synth';
export const SYNTH_FILE = 'gatt_train.jsonl';
export const STATS_FILE = 'stats.json';

/**
 * What the pipeline or the CLI hands the stage: the instruction checkers (the world's) and, for
 * gatt.repair_with_world_rules, the rewrite rules with the instruction ids they know.
 */
export interface GattRules {
  checkers: InstructionCheckers;
  repair?: { readonly ids: readonly string[]; apply: ReplyRepair };
}

export interface SynthResult {
  path: string;
  stats: SynthesisStats;
  /** False when an earlier synthesis with the same settings was reused. */
  fresh: boolean;
}

export async function synthesize(
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
 * data.mix_answers = model: the input model's greedy replies (gatt.max_new_tokens, the synthesis
 * template and context), loaded only when called and disposed after.
 */
export function greedyAnswerer(cfg: GattConfig, input: { modelDir: string; tokenizerDir: string }, log: (m: string) => void): MixAnswerer {
  return async (prompts) => {
    const tokenizer = await loadTokenizer(input.tokenizerDir);
    const model = loadHfModel(input.modelDir);
    try {
      const started = Date.now();
      const replies = await modelReplySampler(model, tokenizer, {
        template: pickTemplate(cfg.tokenizer.template, tokenizer),
        maxNewTokens: cfg.gatt.max_new_tokens,
        temperature: 0,
        batchSize: cfg.gatt.batch_size,
        ...(cfg.gatt.context_tokens !== null ? { maxPromptTokens: cfg.gatt.context_tokens } : {}),
      })(prompts);
      log(`gatt: ${prompts.length} mix answers from ${input.modelDir} (greedy) in ${((Date.now() - started) / 1000).toFixed(0)}s`);
      return replies;
    } finally {
      model.dispose();
    }
  };
}

/** Everything synthesis depends on; equal settings mean an earlier dataset can be reused. */
function synthesisSettings(cfg: GattConfig, input: { modelDir: string; tokenizerDir: string }): Record<string, unknown> {
  const { evaluate: _e, eval_cases: _c, eval_turns: _t, eval_show_turns: _s, ...gatt } = cfg.gatt;
  const { eval_split: _es, eval_max_rows: _em, packing: _p, mix: _m, mix_ratio: _mr, mix_exclude: _mx, mix_answers: _ma, ...data } = cfg.data;
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

