/**
 * The pipeline's wiring, skipping, failure handling and nested tracking, with fake stages that
 * write what real ones write (metrics.jsonl, final/) in milliseconds.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { commonSections, resolveConfig, parseYamlSource, type ResolvedConfig } from '../../src/config/index.js';
import { UserError } from '../../src/errors.js';
import { pipelineConfigSchema, type PipelineConfig, type PipelineStage } from '../../src/pipeline/config.js';
import { runPipeline, type FinalEvaluation, type StageDefinitions } from '../../src/pipeline/runner.js';
import { PIPELINE_STATE_FILE } from '../../src/pipeline/state.js';
import { mappingToOverrides, stageModel } from '../../src/pipeline/wiring.js';
import { openTracker } from '../../src/tracking/index.js';

const fakeSchema = z.strictObject({
  ...commonSections(),
  model: z
    .strictObject({
      path: z.string().default('none'),
      adapter: z.string().nullable().default(null),
      reward_model: z.union([z.string(), z.record(z.string(), z.string())]).nullable().default(null),
    })
    .prefault({}),
  knob: z.number().default(1),
});
type FakeConfig = z.output<typeof fakeSchema>;

interface Call {
  stage: PipelineStage;
  model: FakeConfig['model'];
  resume: string;
  parentRunId: string | undefined;
}

let tmp: string;
let calls: Call[];
let failAt: PipelineStage | null;
let ids: number;

function fakeStages(): StageDefinitions {
  const stage = (name: PipelineStage) => ({
    schema: fakeSchema,
    run: async (resolved: ResolvedConfig, ctx: { parentRunId?: string }) => {
      const cfg = resolved.config as FakeConfig;
      calls.push({ stage: name, model: cfg.model, resume: cfg.train.resume, parentRunId: ctx.parentRunId });
      const tracker = openTracker({ uri: cfg.tracking.uri, runDir: cfg.output_dir, context: context() });
      await tracker.start({ experiment: cfg.tracking.experiment, runName: cfg.tracking.run_name, ...(ctx.parentRunId ? { parentRunId: ctx.parentRunId } : {}) });
      for (let step = 1; step <= 3; step++) await tracker.logMetrics({ 'train/loss': 3 - step * cfg.knob * 0.1 }, step);
      if (failAt === name) {
        await tracker.end('FAILED');
        throw new UserError(`${name}: data/x.jsonl line 3: bad row`);
      }
      const final = join(cfg.output_dir, 'final');
      mkdirSync(final, { recursive: true });
      // SFT leaves a LoRA adapter on its base (as the real one does); the others a model folder.
      if (name === 'sft') writeFileSync(join(final, 'adapter_config.json'), JSON.stringify({ base_model_name_or_path: cfg.model.path }));
      else writeFileSync(join(final, 'config.json'), '{}');
      await tracker.end('FINISHED');
    },
  });
  return { pretrain: stage('pretrain'), sft: stage('sft'), reward: stage('reward'), reward_safety: stage('reward_safety'), ppo: stage('ppo'), dpo: stage('dpo'), gatt: stage('gatt') };
}

const context = () => ({ clock: () => 1_700_000_000_000, newRunId: () => `run${String(++ids).padStart(29, '0')}`, user: 'test', sourceName: 'rlhf' });

const fakeEval: FinalEvaluation = async ({ models, outDir }) => {
  mkdirSync(outDir, { recursive: true });
  const scores: Record<string, number> = { base: 0.1, sft: 0.3, ppo: 0.5, dpo: 0.45, gatt: 0.55 };
  for (const m of Object.keys(models)) writeFileSync(join(outDir, `${m}.json`), JSON.stringify({ judge_score: scores[m], by_family: {}, samples: [] }));
};

function pipelineConfig(extra: string[] = []): ResolvedConfig<PipelineConfig> {
  const yaml = ['stage: pipeline', 'run: { name: demo }', 'stages:', '  ppo: { overrides: { knob: 2 } }'].join('\n');
  return resolveConfig(parseYamlSource(yaml, 'pipeline.yaml'), [
    `output_dir=${join(tmp, 'runs', 'demo')}`,
    `tracking.uri=${join(tmp, 'mlruns')}`,
    `base_model=${join(tmp, 'base')}`,
    ...extra,
  ], { stage: 'pipeline', schema: pipelineConfigSchema });
}

const run = (extra: string[] = [], force: string[] = []) =>
  runPipeline(pipelineConfig(extra), { stages: fakeStages(), evaluate: fakeEval, force, log: () => {}, print: () => {}, context: context() });

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pipeline-'));
  mkdirSync(join(tmp, 'base'));
  writeFileSync(join(tmp, 'base', 'config.json'), '{}');
  calls = [];
  failAt = null;
  ids = 0;
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

test('runs the enabled stages in order, each wired to the previous outputs', async () => {
  const result = await run();
  const runDir = join(tmp, 'runs', 'demo');
  expect(result.stages.map((s) => `${s.stage}:${s.action}`)).toEqual(['pretrain:disabled', 'sft:ran', 'reward:ran', 'reward_safety:disabled', 'ppo:ran', 'dpo:disabled', 'gatt:ran']);
  const base = join(tmp, 'base');
  const sftFinal = join(runDir, 'sft', 'final');
  expect(calls.map((c) => [c.stage, c.model])).toEqual([
    ['sft', { path: base, adapter: null, reward_model: null }],
    ['reward', { path: base, adapter: sftFinal, reward_model: null }],
    ['ppo', { path: base, adapter: sftFinal, reward_model: join(runDir, 'reward', 'final') }],
    ['gatt', { path: join(runDir, 'ppo', 'final'), adapter: null, reward_model: null }],
  ]);
  // Fresh stages never resume someone else's checkpoint.
  expect(calls.every((c) => c.resume === 'never')).toBe(true);

  // One parent run; every stage's run is nested under it.
  const parentId = calls[0]!.parentRunId!;
  expect(calls.every((c) => c.parentRunId === parentId)).toBe(true);
  const exp = join(tmp, 'mlruns', '0');
  const runs = readdirSync(exp).filter((d) => d.startsWith('run'));
  expect(runs).toHaveLength(5);
  const nested = runs.filter((r) => existsSync(join(exp, r, 'tags', 'mlflow.parentRunId')));
  expect(nested).toHaveLength(4);
  for (const r of nested) expect(readFileSync(join(exp, r, 'tags', 'mlflow.parentRunId'), 'utf8')).toBe(parentId);
  expect(readFileSync(join(exp, parentId, 'meta.yaml'), 'utf8')).toContain('status: 3'); // FINISHED
  expect(readFileSync(join(exp, parentId, 'metrics', 'judge', 'ppo'), 'utf8')).toBe('1700000000000 0.5 7\n');
  expect(existsSync(join(exp, parentId, 'artifacts', 'report.md'))).toBe(true);

  expect(result.evaluated).toBe(true);
  expect(result.report?.summary.judge).toEqual({ base: 0.1, sft: 0.3, rs: null, ppo: 0.5, dpo: null, gatt: 0.55 });
  expect(existsSync(join(runDir, 'report.html'))).toBe(true);
});

test('a second run skips finished stages; a changed config reruns that stage and everything after it', async () => {
  await run();
  calls = [];
  let result = await run();
  expect(result.stages.map((s) => s.action)).toEqual(['disabled', 'skipped', 'skipped', 'disabled', 'skipped', 'disabled', 'skipped']);
  expect(result.evaluated).toBe(false);
  expect(calls).toEqual([]);

  result = await run(['stages.ppo.overrides.knob=3']);
  expect(result.stages.map((s) => s.action)).toEqual(['disabled', 'skipped', 'skipped', 'disabled', 'ran', 'disabled', 'ran']);
  expect(result.evaluated).toBe(true);

  calls = [];
  result = await run(['stages.ppo.overrides.knob=3'], ['reward']);
  expect(calls.map((c) => c.stage)).toEqual(['reward', 'ppo', 'gatt']);
});

test('a failed stage stops the pipeline with a clear message; earlier outputs stay; the rerun resumes it', async () => {
  await run();
  const runDir = join(tmp, 'runs', 'demo');
  const sftMetrics = readFileSync(join(runDir, 'sft', 'metrics.jsonl'), 'utf8');
  failAt = 'ppo';
  calls = [];
  const error = await run(['stages.ppo.overrides.knob=5']).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  expect((error as Error).message).toBe(
    'pipeline stopped: stage ppo failed: ppo: data/x.jsonl line 3: bad row\n' +
      `Earlier outputs are kept: sft (${join(runDir, 'sft')}), reward (${join(runDir, 'reward')}). ` +
      'Fix the problem and run the same command again: finished stages are skipped, ppo resumes from its last checkpoint.',
  );
  expect(calls.map((c) => c.stage)).toEqual(['ppo']);
  expect(readFileSync(join(runDir, 'sft', 'metrics.jsonl'), 'utf8')).toBe(sftMetrics);
  const state = JSON.parse(readFileSync(join(runDir, PIPELINE_STATE_FILE), 'utf8')) as Record<string, { status: string }>;
  expect(state['ppo']!.status).toBe('failed');
  expect(state['sft']!.status).toBe('finished');

  // The fake ppo wrote final/ in the first run; a failed stage keeps no stale final/ in real recipes,
  // so remove it here to model an interrupted stage.
  rmSync(join(runDir, 'ppo', 'final'), { recursive: true });
  failAt = null;
  calls = [];
  await run(['stages.ppo.overrides.knob=5']);
  expect(calls.map((c) => [c.stage, c.resume])).toEqual([['ppo', 'auto'], ['gatt', 'never']]);
});

test('a stage whose input is disabled and missing is a user error naming both', async () => {
  const error = await run(['stages.reward.enabled=false']).catch((e: unknown) => e);
  expect((error as Error).message).toBe('stage ppo needs the reward stage\'s output; enable stages.reward (or run it once) first');
  expect(calls.map((c) => c.stage)).toEqual(['sft']);
});

test('DPO instead of reward + PPO: DPO starts from the SFT model, GAtt from the DPO policy, the report judges DPO', async () => {
  const result = await run(['stages.reward.enabled=false', 'stages.ppo.enabled=false', 'stages.dpo.enabled=true']);
  const runDir = join(tmp, 'runs', 'demo');
  expect(result.stages.map((s) => `${s.stage}:${s.action}`)).toEqual(['pretrain:disabled', 'sft:ran', 'reward:disabled', 'reward_safety:disabled', 'ppo:disabled', 'dpo:ran', 'gatt:ran']);
  expect(calls.map((c) => [c.stage, c.model])).toEqual([
    ['sft', { path: join(tmp, 'base'), adapter: null, reward_model: null }],
    ['dpo', { path: join(tmp, 'base'), adapter: join(runDir, 'sft', 'final'), reward_model: null }],
    ['gatt', { path: join(runDir, 'dpo', 'final'), adapter: null, reward_model: null }],
  ]);
  expect(readdirSync(join(runDir, 'eval')).sort()).toEqual(['base.json', 'dpo.json', 'gatt.json', 'sft.json']);
});

test('a safety reward model (Llama 2): reward_safety starts from the SFT model too, PPO gets {helpfulness, safety}', async () => {
  const result = await run(['stages.reward_safety.enabled=true']);
  const runDir = join(tmp, 'runs', 'demo');
  expect(result.stages.map((s) => `${s.stage}:${s.action}`)).toContain('reward_safety:ran');
  const sftFinal = join(runDir, 'sft', 'final');
  expect(calls.filter((c) => c.stage === 'reward_safety' || c.stage === 'ppo').map((c) => [c.stage, c.model])).toEqual([
    ['reward_safety', { path: join(tmp, 'base'), adapter: sftFinal, reward_model: null }],
    ['ppo', { path: join(tmp, 'base'), adapter: sftFinal, reward_model: { helpfulness: join(runDir, 'reward', 'final'), safety: join(runDir, 'reward_safety', 'final') } }],
  ]);
});

test('a bad stage override is reported with the stage and the pipeline file', async () => {
  const error = await run(['stages.sft.overrides.train.stepz=3']).catch((e: unknown) => e);
  expect((error as Error).message).toMatch(/^stage sft \(stages\.sft in pipeline\.yaml\):\noverride 'train\.stepz=3' train\.stepz: unknown key \(did you mean train\.steps\?\)/);
});

test('--force accepts stage names and all, and rejects others', async () => {
  await expect(run([], ['rewards'])).rejects.toThrow('--force rewards: not a stage; use one of pretrain, sft, reward, reward_safety, ppo, dpo, gatt, rounds, eval or all');
});

test('overrides mapping: nested and dotted keys, values as JSON', () => {
  expect(mappingToOverrides({ train: { steps: 5, 'batch_size': 2 }, 'optim.lr': 1e-3, data: { train: 'a: b.jsonl' }, lora: { target_modules: ['q_proj'] }, x: null })).toEqual([
    'train.steps=5',
    'train.batch_size=2',
    'optim.lr=0.001',
    'data.train="a: b.jsonl"',
    'lora.target_modules=["q_proj"]',
    'x=null',
  ]);
});

test('stageModel: merged folder first, then an HF final/, then adapter on its base', () => {
  const dir = join(tmp, 'stage');
  mkdirSync(join(dir, 'final', 'merged'), { recursive: true });
  writeFileSync(join(dir, 'final', 'adapter_config.json'), JSON.stringify({ base_model_name_or_path: join(tmp, 'base') }));
  expect(stageModel(dir, 'x')).toEqual({ path: join(tmp, 'base'), adapter: join(dir, 'final') });
  writeFileSync(join(dir, 'final', 'merged', 'config.json'), '{}');
  expect(stageModel(dir, 'x')).toEqual({ path: join(dir, 'final', 'merged'), adapter: null });
  expect(() => stageModel(join(tmp, 'nothing'), 'sft')).toThrow('no model there');
});

test('with pretraining enabled, SFT starts from its final/ instead of base_model', async () => {
  await run(['stages.pretrain.enabled=true']);
  expect(calls.map((c) => [c.stage, c.model.path]).slice(0, 2)).toEqual([
    ['pretrain', 'none'],
    ['sft', join(tmp, 'runs', 'demo', 'pretrain', 'final')],
  ]);
});
