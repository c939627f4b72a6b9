/**
 * Integration: the whole pipeline on configs/pipeline/micro.yaml (a tiny model, a few steps per
 * stage, pretraining included), then every artifact is opened: models and adapters load,
 * checkpoints hold their trainer state, result files parse, report links resolve, PNGs decode.
 * The numbers mean nothing at this size; the run takes about a minute on 2 cores.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { loadAdapter } from '../../src/lora/index.js';
import { loadHfModel } from '../../src/model/index.js';
import { pipelineConfigSchema } from '../../src/pipeline/config.js';
import { judgeModels } from '../../src/pipeline/evaluate.js';
import { runPipeline, type PipelineResult } from '../../src/pipeline/runner.js';
import { realStages } from '../../src/pipeline/stages.js';
import { stageModel } from '../../src/pipeline/wiring.js';
import {
  adherenceSchema,
  judgeEvalSchema,
  pngInfo,
  readMetricsRows,
  readResultFile,
  rewardEvalSchema,
} from '../../src/report/index.js';

let tmp: string;
let runDir: string;
let result: PipelineResult;
let printed = '';

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pipeline-micro-'));
  runDir = join(tmp, 'runs', 'micro');
  const safety = ['eval.safety_prompts=data/world/prompts_safety_eval.jsonl', 'eval.safety_limit=12'];
  const resolved = loadConfig('configs/pipeline/micro.yaml', [`output_dir=${runDir}`, `tracking.uri=${join(tmp, 'mlruns')}`, ...safety], {
    stage: 'pipeline',
    schema: pipelineConfigSchema,
  });
  result = await runPipeline(resolved, {
    stages: realStages(),
    evaluate: judgeModels,
    log: () => {},
    print: (t) => void (printed += t),
  });
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const STAGES = ['pretrain', 'sft', 'reward', 'ppo', 'dpo', 'gatt'] as const;

test('every stage ran and left final/, metrics.jsonl and its resolved config', () => {
  // reward_safety (a second, safety reward model) is off by default
  expect(result.stages.map((s) => `${s.stage}:${s.action}`)).toEqual(
    ['pretrain:ran', 'sft:ran', 'reward:ran', 'reward_safety:disabled', 'ppo:ran', 'dpo:ran', 'gatt:ran'],
  );
  for (const stage of STAGES) {
    const dir = join(runDir, stage);
    expect(existsSync(join(dir, 'final'))).toBe(true);
    // (gatt's folder holds the config of the SFT run inside it, so only the file is checked there.)
    const resolvedYaml = readFileSync(join(dir, 'config.resolved.yaml'), 'utf8');
    if (stage !== 'gatt') expect(resolvedYaml).toContain(`stage: ${stage}`);
    const rows = readMetricsRows(join(dir, 'metrics.jsonl'));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => Number.isFinite(r.step))).toBe(true);
  }
});

test('the models each stage produced load, with their adapters', async () => {
  await initEngine({ backend: 'wasm' });
  for (const stage of STAGES) {
    const ref = stageModel(join(runDir, stage), stage);
    const model = loadHfModel(ref.path);
    try {
      if (ref.adapter !== null) loadAdapter(model, ref.adapter);
      expect(model.config.hidden_size).toBe(32);
    } finally {
      model.dispose();
    }
  }
  // The reward model keeps its scalar head.
  const reward = loadHfModel(join(runDir, 'reward', 'final'));
  expect(reward.scoreHead).toBeDefined();
  reward.dispose();
});

test('the PPO adapter records the model it was trained on: recorded base + adapter = the merged policy of the stage', async () => {
  await initEngine({ backend: 'wasm' });
  // micro's SFT writes no merged model, so PPO merged the SFT adapter into the base itself.
  const final = join(runDir, 'ppo', 'final');
  const base = (JSON.parse(readFileSync(join(final, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string }).base_model_name_or_path;
  expect(isAbsolute(base)).toBe(true);
  expect(base).toBe(join(final, 'base'));
  const ids = tf.tensor2d([[1, 5, 9, 13, 17, 21]], undefined, 'int32');
  const logitsOf = (dir: string, adapter: string | null): number[] => {
    const model = loadHfModel(dir);
    try {
      if (adapter !== null) loadAdapter(model, adapter);
      return tf.tidy(() => Array.from(model.forward({ inputIds: ids }).logits.dataSync()));
    } finally {
      model.dispose();
    }
  };
  const peft = logitsOf(base, final);
  const merged = logitsOf(join(final, 'merged'), null);
  const sftDropped = logitsOf(join(runDir, 'pretrain', 'final'), final); // what the old recorded base gave
  ids.dispose();
  expect(Math.max(...peft.map((v, i) => Math.abs(v - merged[i]!)))).toBeLessThan(1e-4);
  expect(Math.max(...sftDropped.map((v, i) => Math.abs(v - merged[i]!)))).toBeGreaterThan(1e-3);
});

test('checkpoints hold their trainer state', () => {
  for (const stage of ['pretrain', 'sft', 'reward', 'ppo', 'dpo'] as const) {
    const dir = join(runDir, stage, 'checkpoints');
    const steps = readdirSync(dir).filter((d) => /^step_\d+$/.test(d));
    expect(steps.length).toBeGreaterThan(0);
    const state = JSON.parse(readFileSync(join(dir, steps[0]!, 'trainer_state.json'), 'utf8')) as { global_step: number };
    expect(state.global_step).toBe(Number(steps[0]!.slice('step_'.length)));
  }
});

test('result files parse: judge scores of every model, reward accuracy, GAtt adherence', () => {
  for (const model of ['base', 'sft', 'ppo', 'dpo', 'gatt']) {
    const judged = readResultFile(join(runDir, 'eval', `${model}.json`), judgeEvalSchema);
    expect(judged?.count).toBe(8);
    expect(judged?.samples).toHaveLength(2);
  }
  const adherence = readResultFile(join(runDir, 'gatt', 'adherence.json'), adherenceSchema);
  expect(adherence?.turns).toEqual([1, 2, 3]);
  // The reward stage's own eval.json when it writes one; the report falls back to metrics otherwise.
  const rewardEval = readResultFile(join(runDir, 'reward', 'eval.json'), rewardEvalSchema);
  const accuracy = rewardEval?.accuracy ?? result.report!.summary.rewardAccuracy;
  expect(accuracy).toBeGreaterThanOrEqual(0);
});

test('the report: every link resolves, every PNG decodes, the summary shows every stage', () => {
  const md = readFileSync(join(runDir, 'report.md'), 'utf8');
  const html = readFileSync(join(runDir, 'report.html'), 'utf8');
  const links = [...[...md.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!), ...[...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)];
  expect(links.length).toBeGreaterThanOrEqual(8);
  for (const link of links) expect(existsSync(join(runDir, link))).toBe(true);
  const plots = result.report!.plots;
  // eval.safety_prompts is set: the final model's safety-vs-helpfulness scatter is drawn too.
  expect(plots.map((p) => p.name)).toEqual(['loss', 'reward_accuracy', 'ppo', 'gatt_adherence', 'safety_scatter']);
  for (const p of plots) {
    const info = pngInfo(readFileSync(join(runDir, p.png)));
    expect(info.width).toBeGreaterThan(100);
    expect(info.height).toBeGreaterThan(100);
  }
  expect(result.report!.summary.status).toEqual({ pretrain: 'finished', sft: 'finished', reward: 'finished', ppo: 'finished', dpo: 'finished', gatt: 'finished' });
  // With safety prompts in the evaluation the judge row says what it measures: helpfulness on the safe prompts.
  expect(md).toMatch(/\| judge score \(helpfulness\) \| \d\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \|/);
  expect(printed).toContain('run micro: pretrain finished, sft finished, reward finished, ppo finished, dpo finished, gatt finished');
});

test('MLflow: one parent run for the pipeline, every stage run nested under it', () => {
  const root = join(tmp, 'mlruns');
  const runs: { id: string; name: string; parent: string | null }[] = [];
  for (const exp of readdirSync(root)) {
    if (exp.startsWith('.') || !existsSync(join(root, exp, 'meta.yaml'))) continue;
    for (const run of readdirSync(join(root, exp))) {
      const tags = join(root, exp, run, 'tags');
      if (!existsSync(tags)) continue;
      const parentFile = join(tags, 'mlflow.parentRunId');
      runs.push({
        id: run,
        name: readFileSync(join(tags, 'mlflow.runName'), 'utf8'),
        parent: existsSync(parentFile) ? readFileSync(parentFile, 'utf8') : null,
      });
    }
  }
  const parents = runs.filter((r) => r.parent === null);
  expect(parents).toHaveLength(1);
  const children = runs.filter((r) => r.parent !== null);
  // pretrain, sft, reward, ppo, dpo and gatt (whose fine-tuning is its own SFT run) all hang off the parent.
  expect(children.length).toBeGreaterThanOrEqual(STAGES.length);
  for (const c of children) expect(c.parent).toBe(parents[0]!.id);
});

test('eval.safety_prompts: every eval/<model>.json carries violation and false-refusal rates and one point per reply', () => {
  for (const f of readdirSync(join(runDir, 'eval')).filter((n) => n.endsWith('.json'))) {
    const e = JSON.parse(readFileSync(join(runDir, 'eval', f), 'utf8'));
    // the first 12 rows of prompts_safety_eval.jsonl: 5 harmful (is_safety), 7 borderline
    expect([f, e.harmful_count, e.borderline_count, e.points.length]).toEqual([f, 5, 7, 12]);
    expect(e.violation_rate).toBeGreaterThanOrEqual(0);
    expect(e.violation_rate).toBeLessThanOrEqual(1);
    expect(e.false_refusal_rate).toBeGreaterThanOrEqual(0);
    expect(e.false_refusal_rate).toBeLessThanOrEqual(1);
  }
});

test('a second run skips every finished stage and the evaluation', async () => {
  const safety = ['eval.safety_prompts=data/world/prompts_safety_eval.jsonl', 'eval.safety_limit=12'];
  const resolved = loadConfig('configs/pipeline/micro.yaml', [`output_dir=${runDir}`, `tracking.uri=${join(tmp, 'mlruns')}`, ...safety], {
    stage: 'pipeline',
    schema: pipelineConfigSchema,
  });
  const again = await runPipeline(resolved, { stages: realStages(), evaluate: judgeModels, log: () => {}, print: () => {} });
  expect(again.stages.map((s) => s.action)).toEqual(['skipped', 'skipped', 'skipped', 'disabled', 'skipped', 'skipped', 'skipped']);
  expect(again.evaluated).toBe(false);
});
