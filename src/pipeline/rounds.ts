/**
 * Iterative rounds (Llama 2 §3.2.3, RLHF-V1…V5), run by the pipeline after the stages before GAtt.
 * Round k, in `runs/<name>/round_<k>/`:
 *
 *   pairs/            1. two replies per prompt from the latest policy (fresh prompts each round)
 *                     2. labelled by the annotator (the world's judge); split into train / held-out
 *   reward/           3. the reward model retrained on all pairs so far
 *   reward_accuracy.json  4. accuracy on this round's held-out new pairs, before and after (staleness)
 *   rs/               5. rejection sampling from the latest policy with this round's reward model
 *                        (from rounds.pool_from on, against the pool of earlier rounds' best replies)
 *   ppo/              6. PPO from the rejection-sampled model, in the rounds rounds.ppo.rounds names
 *   eval/<model>.json 7. the round's models judged with the pipeline's eval settings
 *
 * Each step is skipped, resumed or rerun as a pipeline stage is: skipped when it finished with the
 * same config (hash in pipeline_state.json under `round_<k>/<step>`) and nothing before it ran;
 * resumed (train.resume) when it was interrupted with the same config; otherwise run fresh.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { findConfig, loadConfig, parseYamlSource, resolveConfig, schemaAt, writeFileAtomic, type ResolvedConfig } from '../config/index.js';
import { samplingPrompts } from '../data/prompts.js';
import type { Message } from '../data/schemas.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { initEngine } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { UserError, isUserError } from '../errors.js';
import type { PairSide, SamplePairsOptions, UnlabelledPair } from '../generation/pairs.js';
import type { JudgedModel } from '../report/inputs.js';
import type { PipelineConfig, RoundsConfig } from './config.js';
import type { FinalEvaluation, StageDefinition, StageDefinitions, StageRunContext } from './runner.js';
import { configHash, writePipelineState, type PipelineState } from './state.js';
import { heldOutExclusion, mappingToOverrides, resolvePackagePath, stageModel, type ModelRef, type WiringContext } from './wiring.js';

export const PAIRS_DIR = 'pairs';
export const PAIRS_FILE = 'pairs.jsonl';
export const LABELLED_TRAIN_FILE = 'labelled_train.jsonl';
export const LABELLED_EVAL_FILE = 'labelled_eval.jsonl';
/** Written last: its presence marks a complete pairs step. */
export const PAIRS_STATS_FILE = 'pairs.json';
export const REWARD_ACCURACY_FILE = 'reward_accuracy.json';
/** PPO's training prompts without the held-out evaluation prompts. */
export const PPO_PROMPTS_FILE = 'ppo_prompts.jsonl';

export const roundDir = (runDir: string, k: number): string => join(runDir, `round_${k}`);

/** What the rounds get from outside the pipeline: the rs recipe, the sampler, the annotator, reward scoring. */
export interface RoundsDeps {
  rs: StageDefinition;
  /** Two replies per prompt (src/generation/pairs.ts samplePairs). */
  samplePairs: (prompts: readonly Message[][], sides: readonly [PairSide, PairSide], opts: SamplePairsOptions) => Promise<{ rows: UnlabelledPair[]; emptyDropped: number }>;
  /** Labels the rows: `chosen` becomes the preferred reply (the world's judge, wired in stage-deps). */
  annotate: (
    rows: ReadonlyArray<{ row: number; value: Record<string, unknown> }>,
    opts: { noise: number; seed: number; where: string },
  ) => { rows: Record<string, unknown>[]; stats: Record<string, unknown> };
  /** Share of pairs whose chosen reply the reward model scores higher; scored rows go to `outFile`. */
  accuracy: (rewardModelDir: string, pairsFile: string, outFile: string) => Promise<number>;
}

export interface RoundsInput {
  cfg: PipelineConfig;
  pipelineFile: string;
  runDir: string;
  stages: StageDefinitions;
  deps: RoundsDeps;
  wiring: WiringContext;
  state: PipelineState;
  /** A stage before the rounds ran in this invocation: every round step runs again. */
  upstreamRan: boolean;
  /** --force rounds: redo every round step. */
  force: boolean;
  ctx: StageRunContext;
  evaluate?: FinalEvaluation;
  log: (message: string) => void;
}

export type RoundStepName = 'pairs' | 'reward' | 'staleness' | 'rs' | 'ppo' | 'eval';

export interface RoundStepResult {
  round: number;
  step: RoundStepName;
  action: 'ran' | 'skipped';
  seconds: number;
  dir: string;
}

export interface RoundsResult {
  /** Some step ran (so what follows — GAtt, the final evaluation — must run too). */
  ran: boolean;
  steps: RoundStepResult[];
  /** The last round's models. */
  rs: string;
  ppo: string | null;
}

/** Round k's prompts: the k-th block of `per` prompts, wrapping around the list. */
export function roundPrompts<T>(all: readonly T[], k: number, per: number): T[] {
  if (all.length <= per) return all.slice();
  const start = ((k - 1) * per) % all.length;
  return Array.from({ length: per }, (_, i) => all[(start + i) % all.length]!);
}

/** Indices of the held-out share (seeded), the rest in file order. */
export function splitHeldOut(n: number, fraction: number, seed: number): { train: number[]; held: number[] } {
  const held = new Set(new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, Math.round(n * fraction)));
  const all = Array.from({ length: n }, (_, i) => i);
  return { train: all.filter((i) => !held.has(i)), held: all.filter((i) => held.has(i)) };
}

const hasKey = (schema: z.ZodType, path: string[]) => schemaAt(schema, path) !== undefined;
const set = (key: string, value: unknown): string => `${key}=${JSON.stringify(value)}`;

export async function runRounds(input: RoundsInput): Promise<RoundsResult> {
  const { cfg, runDir, state, log } = input;
  const rounds = cfg.rounds;
  let upstreamRan = input.upstreamRan;
  const steps: RoundStepResult[] = [];

  // The policy round 1 samples from: the PPO policy, else the DPO one, else the SFT model.
  const first = (['ppo', 'dpo', 'sft'] as const).find((s) => input.wiring.outputs[s] !== undefined);
  if (first === undefined) throw new UserError('rounds: need a policy to start from: enable stages.sft (or run it once) first');
  let policy: ModelRef = stageModel(input.wiring.outputs[first]!, first);
  const sftDir = input.wiring.outputs.sft;
  let rewardDir: string | null = input.wiring.outputs.reward !== undefined ? join(input.wiring.outputs.reward, 'final') : null;
  const trainPairs: string[] = [];
  let last: { rs: string; ppo: string | null } | null = null;

  /** One step: skipped, resumed or run as a pipeline stage is. */
  const step = async (
    k: number,
    name: RoundStepName,
    dir: string,
    hash: string,
    finished: () => boolean,
    run: (resumable: boolean) => Promise<void>,
  ): Promise<void> => {
    const key = `round_${k}/${name}` as const;
    const previous = state[key];
    const sameConfig = previous?.config_hash === hash;
    if (finished() && sameConfig && previous?.status === 'finished' && !upstreamRan && !input.force) {
      log(`pipeline: round ${k}: ${name}: done earlier with the same config, skipped (${dir})`);
      steps.push({ round: k, step: name, action: 'skipped', seconds: 0, dir });
      return;
    }
    const resumable = sameConfig && !finished() && !upstreamRan && !input.force;
    log(`pipeline: round ${k}/${rounds.count}: ${name}: ${resumable && previous ? 'continuing' : 'running'} → ${dir}`);
    const started = Date.now();
    state[key] = { config_hash: hash, status: 'running', started_at: new Date(started).toISOString() };
    writePipelineState(runDir, state);
    try {
      await run(resumable);
      if (!finished()) throw new Error(`round ${k} ${name} returned without its output in ${dir}`);
    } catch (e) {
      state[key] = { ...state[key]!, status: 'failed', error: (e as Error).message ?? String(e) };
      writePipelineState(runDir, state);
      throw roundFailure(k, name, e, runDir, log);
    }
    const seconds = (Date.now() - started) / 1000;
    state[key] = { ...state[key]!, status: 'finished', finished_at: new Date().toISOString(), seconds };
    writePipelineState(runDir, state);
    upstreamRan = true;
    steps.push({ round: k, step: name, action: 'ran', seconds, dir });
  };

  /** A stage inside round k: resolved, then skipped / resumed / run fresh. */
  const stageStep = async (
    k: number,
    stage: 'reward' | 'rs' | 'ppo',
    def: StageDefinition,
    wiring: string[],
    append: (c: Record<string, unknown>) => string[],
    prepare?: (c: Record<string, unknown>) => Promise<void>,
  ) => {
    const dir = join(roundDir(runDir, k), stage);
    const base = [...roundRunOverrides(cfg, dir, k, stage), ...wiring];
    const first = resolveRoundStage(input, k, stage, def.schema, base);
    if (prepare) await prepare(first.config as Record<string, unknown>);
    const all = [...base, ...append(first.config as Record<string, unknown>)];
    const resolved = resolveRoundStage(input, k, stage, def.schema, all);
    await step(k, stage, dir, configHash(stage, resolved.config), () => existsSync(join(dir, 'final')), async (resumable) => {
      const toRun = resumable || !hasKey(def.schema, ['train', 'resume']) ? resolved : resolveRoundStage(input, k, stage, def.schema, [...all, 'train.resume=never']);
      await def.run(toRun, input.ctx);
    });
    return { dir, hash: configHash(stage, resolved.config) };
  };

  const evalPrompts = resolvePackagePath(cfg.eval.prompts);
  for (let k = 1; k <= rounds.count; k++) {
    const rdir = roundDir(runDir, k);
    mkdirSync(rdir, { recursive: true });

    // 1–2. fresh pairs from the latest policy, labelled; a share held out for the staleness measure
    const pairsDir = join(rdir, PAIRS_DIR);
    const pairsHash = configHash(`round_${k}/pairs`, { pairs: rounds.pairs, annotate: rounds.annotate, policy, evalPrompts });
    await step(k, 'pairs', pairsDir, pairsHash, () => existsSync(join(pairsDir, PAIRS_STATS_FILE)), () => samplePairsStep(input, k, policy, pairsDir, evalPrompts));
    // A round whose pairs were all ties adds no file (the reward stage refuses an empty one).
    if (countLines(join(pairsDir, LABELLED_TRAIN_FILE)) > 0) trainPairs.push(join(pairsDir, LABELLED_TRAIN_FILE));

    // 3. the reward model, retrained on all pairs so far
    const previousReward = rewardDir;
    let rewardStart: ModelRef;
    if (rounds.reward.from === 'previous' && previousReward !== null) rewardStart = { path: previousReward, adapter: null };
    else if (sftDir !== undefined) rewardStart = stageModel(sftDir, 'sft');
    else throw new UserError('rounds.reward.from: sft needs the SFT stage\'s output');
    const roundPairs = [...trainPairs];
    const reward = await stageStep(k, 'reward', input.stages.reward, [set('model.path', rewardStart.path), set('model.adapter', rewardStart.adapter)], (c) => {
      const data = c['data'] as { train: string | string[] };
      const original = rounds.reward.keep_original ? (typeof data.train === 'string' ? [data.train] : data.train) : [];
      const weighted = roundPairs.flatMap((f) => Array.from({ length: rounds.reward.pairs_weight }, () => f));
      return [set('data.train', [...original, ...weighted])];
    });
    rewardDir = join(reward.dir, 'final');

    // 4. staleness: the previous and the new reward model on this round's held-out new pairs
    const heldFile = join(pairsDir, LABELLED_EVAL_FILE);
    const accFile = join(rdir, REWARD_ACCURACY_FILE);
    const newReward = rewardDir;
    await step(k, 'staleness', rdir, configHash(`round_${k}/staleness`, { pairsHash, reward: reward.hash, previousReward }), () => existsSync(accFile), async () => {
      const held = countLines(heldFile);
      await initEngine({ backend: rounds.pairs.backend });
      const scored = join(rdir, 'reward_accuracy');
      mkdirSync(scored, { recursive: true });
      const before = held > 0 && previousReward !== null ? await input.deps.accuracy(previousReward, heldFile, join(scored, 'before.jsonl')) : null;
      const after = held > 0 ? await input.deps.accuracy(newReward, heldFile, join(scored, 'after.jsonl')) : null;
      writeFileAtomic(accFile, JSON.stringify({ round: k, pairs: held, before, after, before_model: previousReward, after_model: newReward }, null, 2) + '\n');
      log(`pipeline: round ${k}: reward accuracy on this round's ${held} held-out new pairs: before ${fmt(before)} → after ${fmt(after)}`);
    });

    // 5. rejection sampling from the latest policy with this round's reward model
    const previousRs = last?.rs ?? null;
    const pool = rounds.pool_from !== null && k >= rounds.pool_from && previousRs !== null ? join(previousRs, 'pool.jsonl') : null;
    const rs = await stageStep(
      k,
      'rs',
      input.deps.rs,
      [
        set('model.path', policy.path),
        set('model.adapter', policy.adapter),
        set('model.reward_model', newReward),
        ...(pool !== null ? [set('rs.keep_best_across_rounds', true), set('rs.pool', pool)] : []),
      ],
      // The held-out evaluation prompts are always excluded, whatever the rs config says.
      (c) => heldOutExclusion(c, 'data.exclude', evalPrompts),
    );
    policy = stageModel(rs.dir, 'rs');

    // 6. PPO from the rejection-sampled model
    let ppoDir: string | null = null;
    if (rounds.ppo.rounds.includes(k)) {
      // PPO's training prompts lose the held-out evaluation prompts too (the world's prompts.jsonl holds 331 rows of them).
      const ppoPrompts = join(rdir, PPO_PROMPTS_FILE);
      const ppo = await stageStep(k, 'ppo', input.stages.ppo, [set('model.path', policy.path), set('model.adapter', policy.adapter), set('model.reward_model', newReward)], (c) => {
        const file = (c['data'] as { prompts?: unknown }).prompts;
        return typeof file === 'string' ? [set('data.prompts', ppoPrompts)] : [];
      }, async (c) => {
        const file = (c['data'] as { prompts: string }).prompts;
        await writeHeldOutFreePrompts(resolvePackagePath(file), evalPrompts, ppoPrompts);
      });
      ppoDir = ppo.dir;
      policy = stageModel(ppo.dir, 'ppo');
    }
    last = { rs: rs.dir, ppo: ppoDir };

    // 7. the round's models, judged as the final evaluation judges
    if (rounds.eval && input.evaluate) {
      const models: Partial<Record<JudgedModel, ModelRef>> = { rs: stageModel(rs.dir, 'rs'), ...(ppoDir !== null ? { ppo: stageModel(ppoDir, 'ppo') } : {}) };
      const evalDir = join(rdir, 'eval');
      const evaluate = input.evaluate;
      await step(
        k,
        'eval',
        evalDir,
        configHash(`round_${k}/eval`, { settings: cfg.eval, models }),
        () => Object.keys(models).every((m) => existsSync(join(evalDir, `${m}.json`))),
        () => evaluate({ models, settings: cfg.eval, outDir: evalDir, log }),
      );
    }
  }
  if (last === null) throw new Error('runRounds: rounds.count is 0');
  return { ran: upstreamRan, steps, rs: last.rs, ppo: last.ppo };
}

/** Steps 1–2: sample, write the unlabelled pairs, label them, split, and write pairs.json last. */
async function samplePairsStep(input: RoundsInput, k: number, policy: ModelRef, dir: string, evalPrompts: string): Promise<void> {
  const p = input.cfg.rounds.pairs;
  // The stages init the engine themselves; this step may be the first thing a resumed pipeline runs.
  await initEngine({ backend: p.backend });
  mkdirSync(dir, { recursive: true });
  const exclude = [...new Set([...p.exclude.map(resolvePackagePath), evalPrompts])];
  const all = await samplingPrompts(resolvePackagePath(p.prompts), exclude, (m) => input.log(`pipeline: round ${k}: pairs: ${m}`));
  if (all.length === 0) throw new UserError(`rounds.pairs.prompts: ${p.prompts}: no prompt left to sample after exclusion`);
  const prompts = roundPrompts(all, k, p.per_round).map((x) => x.prompt);
  const side = (temperature: number): PairSide => ({ model: policy.path, adapter: policy.adapter, temperature, topP: p.top_p });
  const seed = p.seed + k;
  const { rows, emptyDropped } = await input.deps.samplePairs(prompts, [side(p.temperature), side(p.temperature_b)], {
    template: 'auto',
    maxNewTokens: p.max_new_tokens,
    batchSize: p.batch_size,
    seed,
  });
  const pairsFile = join(dir, PAIRS_FILE);
  await writeRowsAtomic(pairsFile, rows as unknown as Record<string, unknown>[]);
  const labelled = input.deps.annotate(
    rows.map((value, i) => ({ row: i + 1, value: value as unknown as Record<string, unknown> })),
    { noise: input.cfg.rounds.annotate.noise, seed, where: pairsFile },
  );
  const { train, held } = splitHeldOut(labelled.rows.length, p.eval_fraction, seed);
  await writeRowsAtomic(join(dir, LABELLED_TRAIN_FILE), train.map((i) => labelled.rows[i]!));
  await writeRowsAtomic(join(dir, LABELLED_EVAL_FILE), held.map((i) => labelled.rows[i]!));
  const stats = { round: k, prompts: prompts.length, pairs: rows.length, empty_dropped: emptyDropped, annotation: labelled.stats, train: train.length, held_out: held.length };
  writeFileAtomic(join(dir, PAIRS_STATS_FILE), JSON.stringify(stats, null, 2) + '\n');
  input.log(`pipeline: round ${k}: ${rows.length} pairs sampled, ${labelled.rows.length} labelled (${train.length} train, ${held.length} held out) → ${dir}`);
}

/** The run settings of a stage inside round k: its folder, tracking under the pipeline's run. */
function roundRunOverrides(cfg: PipelineConfig, dir: string, k: number, stage: string): string[] {
  const t = cfg.tracking;
  return [
    set('run.name', cfg.run.name),
    set('output_dir', dir),
    set('tracking.uri', t.uri),
    set('tracking.experiment', t.experiment),
    set('tracking.run_name', `round_${k}/${stage}`),
    `tracking.enabled=${t.enabled}`,
  ];
}

/**
 * A round stage's config: its config file (rounds.<stage>.config, else the top-level stage's) ←
 * run settings and wiring ← stages.<stage>.overrides (reward, ppo) ← rounds.<stage>.overrides ←
 * rounds.<stage>.by_round[k].
 */
function resolveRoundStage(input: RoundsInput, k: number, stage: 'reward' | 'rs' | 'ppo', schema: z.ZodType, overrides: readonly string[]): ResolvedConfig {
  const { cfg, pipelineFile } = input;
  const entry: RoundsConfig['reward'] | RoundsConfig['rs'] | RoundsConfig['ppo'] = cfg.rounds[stage];
  const top = stage === 'rs' ? null : cfg.stages[stage];
  const configName = entry.config ?? top?.config ?? null;
  const all = [
    ...overrides,
    ...(top ? mappingToOverrides(top.overrides) : []),
    ...mappingToOverrides(entry.overrides),
    ...mappingToOverrides(entry.by_round[String(k)] ?? {}),
  ];
  // Appended lists (data.train, data.exclude) come after the user's overrides, so they always hold the rounds' files.
  const wired = overrides.filter((o) => o.startsWith('data.train=') || o.startsWith('data.exclude=') || o.startsWith('data.prompts='));
  const ordered = [...all.filter((o) => !wired.includes(o)), ...wired];
  try {
    if (configName !== null) return loadConfig(findConfig(configName), ordered, { stage, schema });
    return resolveConfig(parseYamlSource(`stage: ${stage}\n`, `${pipelineFile} (rounds.${stage})`), ordered, { stage, schema });
  } catch (e) {
    if (isUserError(e)) throw new UserError(`round ${k} ${stage} (rounds.${stage} in ${pipelineFile}):\n${e.message}`, { cause: e });
    throw e;
  }
}

function roundFailure(k: number, name: RoundStepName, e: unknown, runDir: string, log: (m: string) => void): unknown {
  const advice = `Earlier rounds and steps are kept. Fix the problem and run the same command again: finished steps are skipped, round ${k} ${name} resumes.`;
  if (isUserError(e)) return new UserError(`pipeline stopped: round ${k} ${name} failed: ${e.message}\n${advice}`, { exitCode: e.exitCode, cause: e });
  log(`pipeline stopped: round ${k} ${name} failed (run folder ${runDir}). ${advice}`);
  return e;
}

/** `file`'s distinct prompts minus those of `heldOut`, as prompt-only rows (written only when they differ from what is there). */
async function writeHeldOutFreePrompts(file: string, heldOut: string, out: string): Promise<void> {
  const prompts = await samplingPrompts(file, [heldOut]);
  if (prompts.length === 0) throw new UserError(`${file}: no PPO prompt left after removing the held-out evaluation prompts (${heldOut})`);
  const text = prompts.map((p) => JSON.stringify({ prompt: p.prompt })).join('\n') + '\n';
  if (!existsSync(out) || readFileSync(out, 'utf8') !== text) writeFileAtomic(out, text);
}

function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
}

const fmt = (x: number | null): string => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);
