/**
 * The pipeline: pretrain → SFT → reward → PPO → GAtt → final evaluation → report, one folder per
 * stage under `runs/<name>/`, each stage's inputs wired from the earlier ones' `final/` folders.
 *
 * A stage that finished with the same resolved config is skipped (`force` redoes it); once a stage
 * runs, every later enabled stage runs too, since its inputs changed. A failed stage stops the
 * pipeline; the earlier stages' folders stay as they are. MLflow: one parent run for the pipeline,
 * each stage's run nested under it (`mlflow.parentRunId`).
 *
 * The stage recipes are passed in (`stages.ts` has the real ones), so tests can run the wiring,
 * skipping and tracking with fake stages.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { findConfig, loadConfig, parseYamlSource, resolveConfig, schemaAt, type ResolvedConfig } from '../config/index.js';
import { UserError, isUserError } from '../errors.js';
import { JUDGED_MODELS, type JudgedModel } from '../report/inputs.js';
import { terminalSummary, writeRunReport, type RunReport } from '../report/index.js';
import { flattenParams, openTracker, type EndStatus, type RunContext, type Tracker } from '../tracking/index.js';
import { PIPELINE_STAGES, type PipelineConfig, type PipelineStage } from './config.js';
import { runRounds, type RoundStepResult, type RoundsDeps } from './rounds.js';
import { configHash, readPipelineState, writePipelineState, type PipelineState } from './state.js';
import { heldOutExclusion, mappingToOverrides, resolvePackagePath, stageModel, wiringOverrides, type ModelRef, type WiringContext } from './wiring.js';

export interface StageRunContext {
  /** The pipeline's MLflow run: the stage's run is nested under it. */
  parentRunId?: string;
  log: (message: string) => void;
}

/** Runs one stage from its resolved config; must leave `<output_dir>/final/` when it succeeds. */
export type StageRunner = (resolved: ResolvedConfig, ctx: StageRunContext) => Promise<void>;

export interface StageDefinition {
  schema: z.ZodType;
  run: StageRunner;
}

export type StageDefinitions = Record<PipelineStage, StageDefinition>;

export interface FinalEvaluationInput {
  /** The models to judge (those that exist). */
  models: Partial<Record<JudgedModel, ModelRef>>;
  settings: PipelineConfig['eval'];
  /** Where `<model>.json` files go (runs/<name>/eval/). */
  outDir: string;
  log: (message: string) => void;
}

export type FinalEvaluation = (input: FinalEvaluationInput) => Promise<void>;

export interface PipelineRunOptions {
  stages: StageDefinitions;
  /** The final evaluation (default: none — `stages.ts` provides the judge-based one). */
  evaluate?: FinalEvaluation;
  /** What the iterative rounds (`rounds.count` > 0) need: `stages.ts` realRounds(). */
  rounds?: RoundsDeps;
  /** Stages to redo even when finished (`all` for every one; `rounds` for every round step). */
  force?: readonly string[];
  log?: (message: string) => void;
  /** Where the closing summary goes (default stdout). */
  print?: (text: string) => void;
  /** Tests: deterministic tracking. */
  context?: Partial<RunContext>;
}

export type StageAction = 'ran' | 'skipped' | 'disabled';

export interface PipelineResult {
  runDir: string;
  stages: Array<{ stage: PipelineStage; action: StageAction; seconds: number; dir: string }>;
  /** The steps of the iterative rounds (empty without rounds). */
  rounds: RoundStepResult[];
  evaluated: boolean;
  report: RunReport | null;
}

/** `--force` values checked against the stage names. */
export function parseForce(force: readonly string[]): Set<PipelineStage | 'rounds' | 'eval'> {
  const known = [...PIPELINE_STAGES, 'rounds', 'eval'] as const;
  const out = new Set<PipelineStage | 'rounds' | 'eval'>();
  for (const f of force.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '')) {
    if (f === 'all') known.forEach((s) => out.add(s));
    else if ((known as readonly string[]).includes(f)) out.add(f as PipelineStage | 'rounds' | 'eval');
    else throw new UserError(`--force ${f}: not a stage; use one of ${known.join(', ')} or all`);
  }
  return out;
}

/** The settings the pipeline imposes on every stage: the run, its folder, tracking. */
export function runOverrides(cfg: PipelineConfig, runDir: string, stage: PipelineStage): string[] {
  const t = cfg.tracking;
  return [
    `run.name=${JSON.stringify(cfg.run.name)}`,
    `output_dir=${JSON.stringify(join(runDir, stage))}`,
    `tracking.uri=${JSON.stringify(t.uri)}`,
    `tracking.experiment=${JSON.stringify(t.experiment)}`,
    `tracking.run_name=${JSON.stringify(stage)}`,
    `tracking.enabled=${t.enabled}`,
  ];
}

/**
 * A stage's resolved config: its config file (or the schema defaults) ← run settings ← wiring ←
 * the pipeline config's `stages.<stage>.overrides`. Problems name the stage.
 */
export function resolveStageConfig(
  stage: PipelineStage,
  cfg: PipelineConfig,
  schema: z.ZodType,
  overrides: readonly string[],
  pipelineFile: string,
): ResolvedConfig {
  const entry = cfg.stages[stage];
  const all = [...overrides, ...mappingToOverrides(entry.overrides)];
  const configStage = stage === 'reward_safety' ? 'reward' : stage; // a second reward model takes a reward config
  const load = (list: readonly string[]) =>
    entry.config !== null
      ? loadConfig(findConfig(entry.config), list, { stage: configStage, schema })
      : resolveConfig(parseYamlSource(`stage: ${configStage}\n`, `${pipelineFile} (stages.${stage})`), list, { stage: configStage, schema });
  try {
    const resolved = load(all);
    // GAtt's mix never holds a held-out evaluation prompt, as rs's samples in the rounds.
    if (stage !== 'gatt' || !hasKey(schema, ['data', 'mix_exclude'])) return resolved;
    const extra = heldOutExclusion(resolved.config as Record<string, unknown>, 'data.mix_exclude', resolvePackagePath(cfg.eval.prompts));
    return extra.length === 0 ? resolved : load([...all, ...extra]);
  } catch (e) {
    if (isUserError(e)) throw new UserError(`stage ${stage} (stages.${stage} in ${pipelineFile}):\n${e.message}`, { cause: e });
    throw e;
  }
}

const hasKey = (schema: z.ZodType, path: string[]) => schemaAt(schema, path) !== undefined;

export async function runPipeline(resolved: ResolvedConfig<PipelineConfig>, opts: PipelineRunOptions): Promise<PipelineResult> {
  const cfg = resolved.config;
  const log = opts.log ?? ((m: string) => void process.stderr.write(m + '\n'));
  const print = opts.print ?? ((t: string) => void process.stdout.write(t + '\n'));
  const force = parseForce(opts.force ?? []);
  const runDir = resolve(cfg.output_dir);
  mkdirSync(runDir, { recursive: true });
  const state: PipelineState = readPipelineState(runDir);

  const parent = openTracker({
    uri: cfg.tracking.enabled ? cfg.tracking.uri : null,
    warn: log,
    ...(opts.context ? { context: opts.context } : {}),
  });
  const { runId } = await parent.start({ experiment: cfg.tracking.experiment, runName: cfg.tracking.run_name, tags: { stage: 'pipeline' } });
  await parent.logParams(flattenParams({ stage: 'pipeline', ...(cfg as unknown as Record<string, unknown>) }));
  const ctx: StageRunContext = { log, ...(runId !== '' ? { parentRunId: runId } : {}) };

  const result: PipelineResult = { runDir, stages: [], rounds: [], evaluated: false, report: null };
  let status: EndStatus = 'FAILED';
  try {
    const wiring: WiringContext = { base: { path: resolvePackagePath(cfg.base_model), adapter: null }, outputs: {} };
    let upstreamRan = false;

    for (const stage of PIPELINE_STAGES) {
      if (stage === 'gatt' && cfg.rounds.count > 0) {
        // The iterative rounds come after the stages that train the first policy and reward model, before GAtt.
        if (!opts.rounds) throw new UserError('rounds.count > 0, but this pipeline was started without what the rounds need (stages.ts realRounds)');
        const rounds = await runRounds({
          cfg, pipelineFile: resolved.file, runDir, stages: opts.stages, deps: opts.rounds, wiring, state, upstreamRan, force: force.has('rounds'), ctx, log,
          ...(opts.evaluate ? { evaluate: opts.evaluate } : {}),
        });
        result.rounds = rounds.steps;
        upstreamRan ||= rounds.ran;
        wiring.outputs.rs = rounds.rs;
        if (rounds.ppo !== null) wiring.outputs.ppo = rounds.ppo;
        wiring.rounds = { policy: rounds.ppo !== null ? { stage: 'ppo', dir: rounds.ppo } : { stage: 'rs', dir: rounds.rs }, rs: rounds.rs };
      }
      const dir = join(runDir, stage);
      const entry = cfg.stages[stage];
      const finished = existsSync(join(dir, 'final'));
      if (!entry.enabled) {
        // A disabled stage's earlier output still feeds the next stages.
        if (finished) wiring.outputs[stage] = dir;
        result.stages.push({ stage, action: 'disabled', seconds: 0, dir });
        continue;
      }
      const def = opts.stages[stage];
      const base = [...runOverrides(cfg, runDir, stage), ...wiringOverrides(stage, wiring)];
      const stageConfig = resolveStageConfig(stage, cfg, def.schema, base, resolved.file);
      const hash = configHash(stage, stageConfig.config);
      const previous = state[stage];
      const sameConfig = previous?.config_hash === hash;

      if (finished && sameConfig && previous?.status === 'finished' && !upstreamRan && !force.has(stage)) {
        log(`pipeline: ${stage}: done earlier with the same config, skipped (${dir}; --force ${stage} redoes it)`);
        produced(wiring, stage, dir);
        result.stages.push({ stage, action: 'skipped', seconds: 0, dir });
        continue;
      }
      // Same config, not finished: an interrupted run, resumed as the stage's train.resume says.
      // Anything else starts fresh: an old checkpoint belongs to other settings or other inputs.
      const resumable = sameConfig && !finished && !upstreamRan && !force.has(stage);
      const toRun =
        resumable || !hasKey(def.schema, ['train', 'resume'])
          ? stageConfig
          : resolveStageConfig(stage, cfg, def.schema, [...base, 'train.resume=never'], resolved.file);

      log(`pipeline: ${stage}: ${resumable && previous ? 'continuing' : 'running'} → ${dir}`);
      const started = Date.now();
      state[stage] = { config_hash: hash, status: 'running', started_at: new Date(started).toISOString() };
      writePipelineState(runDir, state);
      try {
        await def.run(toRun, ctx);
        if (!existsSync(join(dir, 'final'))) throw new Error(`stage ${stage} returned without writing ${join(dir, 'final')}`);
      } catch (e) {
        state[stage] = { ...state[stage]!, status: 'failed', error: (e as Error).message ?? String(e) };
        writePipelineState(runDir, state);
        throw stageFailure(stage, e, result, runDir, log);
      }
      const seconds = (Date.now() - started) / 1000;
      state[stage] = { ...state[stage]!, status: 'finished', finished_at: new Date().toISOString(), seconds };
      writePipelineState(runDir, state);
      await parent.logMetrics({ [`pipeline/${stage}_seconds`]: seconds }, PIPELINE_STAGES.indexOf(stage));
      produced(wiring, stage, dir);
      upstreamRan = true;
      result.stages.push({ stage, action: 'ran', seconds, dir });
    }

    if (cfg.eval.enabled && opts.evaluate) {
      result.evaluated = await finalEvaluation(cfg, runDir, wiring, state, upstreamRan || force.has('eval'), opts.evaluate, log);
    }
    if (cfg.report.enabled) {
      const report = await writeRunReport(runDir, { name: cfg.run.name, rounds: cfg.rounds.count });
      result.report = report;
      await logSummary(parent, report);
      print(terminalSummary(report.summary, report.inputs, { reportPath: join(runDir, 'report.md') }));
    }
    status = 'FINISHED';
    return result;
  } catch (e) {
    status = isUserError(e) && e.exitCode >= 128 ? 'KILLED' : 'FAILED';
    throw e;
  } finally {
    await parent.end(status);
  }
}

/** Record a stage's output; an enabled pretrain stage's model becomes the base SFT starts from. */
function produced(wiring: WiringContext, stage: PipelineStage, dir: string): void {
  wiring.outputs[stage] = dir;
  if (stage === 'pretrain') wiring.base = stageModel(dir, stage);
}

function stageFailure(stage: PipelineStage, e: unknown, result: PipelineResult, runDir: string, log: (m: string) => void): unknown {
  const kept = result.stages.filter((s) => s.action !== 'disabled').map((s) => `${s.stage} (${s.dir})`);
  const keptText = kept.length > 0 ? `Earlier outputs are kept: ${kept.join(', ')}.` : 'No earlier stage output was touched.';
  const advice = `${keptText} Fix the problem and run the same command again: finished stages are skipped, ${stage} resumes from its last checkpoint.`;
  if (isUserError(e)) {
    return new UserError(`pipeline stopped: stage ${stage} failed: ${e.message}\n${advice}`, { exitCode: e.exitCode, cause: e });
  }
  // An unexpected error keeps its stack (main prints it with RLHF_DEBUG=1); the advice goes to the log.
  log(`pipeline stopped: stage ${stage} failed (run folder ${runDir}). ${advice}`);
  return e;
}

/** The models to judge: base, and the SFT / RS (last round) / PPO / DPO / GAtt outputs that exist. */
export function judgedModels(wiring: WiringContext): Partial<Record<JudgedModel, ModelRef>> {
  const models: Partial<Record<JudgedModel, ModelRef>> = {};
  if (existsSync(join(wiring.base.path, 'config.json'))) models.base = wiring.base;
  for (const m of JUDGED_MODELS) {
    if (m === 'base') continue;
    const dir = wiring.outputs[m];
    if (dir !== undefined) models[m] = stageModel(dir, m);
  }
  return models;
}

/** Runs the evaluation unless the same models were already judged with the same settings. */
async function finalEvaluation(
  cfg: PipelineConfig,
  runDir: string,
  wiring: WiringContext,
  state: PipelineState,
  mustRun: boolean,
  evaluate: FinalEvaluation,
  log: (m: string) => void,
): Promise<boolean> {
  const models = judgedModels(wiring);
  const outDir = join(runDir, 'eval');
  const hash = configHash('eval', { settings: cfg.eval, models, stages: PIPELINE_STAGES.map((s) => state[s]?.config_hash ?? null) });
  const done = state.eval?.status === 'finished' && state.eval.config_hash === hash;
  const present = Object.keys(models).every((m) => existsSync(join(outDir, `${m}.json`)));
  if (done && present && !mustRun) {
    log(`pipeline: eval: done earlier with the same models and settings, skipped (--force eval redoes it)`);
    return false;
  }
  log(`pipeline: eval: judging ${Object.keys(models).join(', ')} → ${outDir}`);
  const started = Date.now();
  state.eval = { config_hash: hash, status: 'running', started_at: new Date(started).toISOString() };
  writePipelineState(runDir, state);
  await evaluate({ models, settings: cfg.eval, outDir, log });
  state.eval = { ...state.eval, status: 'finished', finished_at: new Date().toISOString(), seconds: (Date.now() - started) / 1000 };
  writePipelineState(runDir, state);
  return true;
}

/** The summary numbers and the report files on the pipeline's parent run. */
async function logSummary(parent: Tracker, report: RunReport): Promise<void> {
  const s = report.summary;
  const metrics: Record<string, number> = {};
  for (const m of JUDGED_MODELS) if (s.judge[m] !== null) metrics[`judge/${m}`] = s.judge[m]!;
  if (s.rewardAccuracy !== null) metrics['reward/accuracy'] = s.rewardAccuracy;
  if (s.finalKl !== null) metrics['ppo/final_kl'] = s.finalKl;
  if (Object.keys(metrics).length > 0) await parent.logMetrics(metrics, PIPELINE_STAGES.length);
  const dir = report.inputs.runDir;
  for (const f of ['report.md', 'report.html']) await parent.logArtifact(join(dir, f));
  await parent.logArtifact(join(dir, 'report'));
}
