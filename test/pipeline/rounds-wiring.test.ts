/**
 * The rounds' wiring with fake stages and a fake sampler / annotator / scorer (milliseconds):
 * which model and data each round's reward, rs and PPO get, the held-out prompts appended to
 * exclusions, the pool from rounds.pool_from, GAtt from the last policy with its rs rows mixed
 * in, and per-step skipping when only a later step's settings change.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { commonSections, parseYamlSource, resolveConfig, type ResolvedConfig } from '../../src/config/index.js';
import { promptKey, readPrompts } from '../../src/data/prompts.js';
import { packagePath } from '../../src/paths.js';
import { pipelineConfigSchema, type PipelineConfig } from '../../src/pipeline/config.js';
import type { RoundsDeps } from '../../src/pipeline/rounds.js';
import { runPipeline, type FinalEvaluation, type PipelineResult, type StageDefinition, type StageDefinitions } from '../../src/pipeline/runner.js';

const fakeSchema = z.strictObject({
  ...commonSections(),
  model: z.strictObject({ path: z.string().default('none'), adapter: z.string().nullable().default(null), reward_model: z.string().nullable().default(null) }).prefault({}),
  data: z
    .strictObject({
      train: z.union([z.string(), z.array(z.string())]).default('data/world/preferences.jsonl'),
      exclude: z.array(z.string()).default([]),
      prompts: z.string().default('data/world/prompts.jsonl'),
      mix: z.array(z.string()).default([]),
      mix_exclude: z.array(z.string()).default([]),
    })
    .prefault({}),
  rs: z.strictObject({ keep_best_across_rounds: z.boolean().default(false), pool: z.string().nullable().default(null) }).prefault({}),
});
type Fake = z.output<typeof fakeSchema>;

let tmp: string;
let runDir: string;
let calls: Array<{ name: string; cfg: Fake }>;

function stage(name: string): StageDefinition {
  return {
    schema: fakeSchema,
    run: async (resolved: ResolvedConfig) => {
      const cfg = resolved.config as Fake;
      calls.push({ name: cfg.tracking.run_name ?? name, cfg });
      mkdirSync(join(cfg.output_dir, 'final'), { recursive: true });
      writeFileSync(join(cfg.output_dir, 'final', 'config.json'), '{}');
      if (name === 'rs') {
        writeFileSync(join(cfg.output_dir, 'pool.jsonl'), '');
        writeFileSync(join(cfg.output_dir, 'rs_train.jsonl'), '');
      }
    },
  };
}

const fakeStages = (): StageDefinitions => ({ pretrain: stage('pretrain'), sft: stage('sft'), reward: stage('reward'), reward_safety: stage('reward_safety'), ppo: stage('ppo'), dpo: stage('dpo'), gatt: stage('gatt') });

const sampled: Array<{ prompts: number; seed: number; model: string }> = [];
const deps: RoundsDeps = {
  rs: stage('rs'),
  samplePairs: async (prompts, sides, opts) => {
    sampled.push({ prompts: prompts.length, seed: opts.seed, model: sides[0].model });
    const rows = prompts.map((prompt) => ({
      prompt: [...prompt],
      chosen: [{ role: 'assistant', content: `A ${prompt[0]!.content}` }],
      rejected: [{ role: 'assistant', content: 'B' }],
      label: null,
      sampled: { a: { model: sides[0].model, adapter: null, temperature: sides[0].temperature, finished: true }, b: { model: sides[1].model, adapter: null, temperature: sides[1].temperature, finished: true } },
    }));
    return { rows: rows as Awaited<ReturnType<RoundsDeps['samplePairs']>>['rows'], emptyDropped: 0 };
  },
  // Labels every pair "a" (the longer reply).
  annotate: (rows) => ({ rows: rows.map((r) => ({ ...r.value, label: 'a', strength: 'better' })), stats: { labelled: rows.length } }),
  accuracy: async (model) => (model.includes('round_') ? 0.8 : 0.6),
};

const fakeEval: FinalEvaluation = async ({ models, outDir }) => {
  mkdirSync(outDir, { recursive: true });
  for (const m of Object.keys(models)) writeFileSync(join(outDir, `${m}.json`), JSON.stringify({ judge_score: 0.5, by_family: {}, samples: [] }));
};

function config(extra: string[] = []): ResolvedConfig<PipelineConfig> {
  const yaml = [
    'stage: pipeline',
    'run: { name: demo }',
    'stages: { ppo: { enabled: false } }',
    'rounds:',
    '  count: 3',
    '  pairs: { per_round: 5, eval_fraction: 0.2 }',
    '  reward: { pairs_weight: 2 }',
    '  rs: { config: null }',
    '  pool_from: 3',
    '  ppo: { rounds: [2, 3] }',
  ].join('\n');
  return resolveConfig(parseYamlSource(yaml, 'pipeline.yaml'), [`output_dir=${runDir}`, 'tracking.enabled=false', `base_model=${join(tmp, 'base')}`, 'report.enabled=false', ...extra], {
    stage: 'pipeline',
    schema: pipelineConfigSchema,
  });
}

const run = (extra: string[] = []): Promise<PipelineResult> => runPipeline(config(extra), { stages: fakeStages(), rounds: deps, evaluate: fakeEval, log: () => {}, print: () => {} });
const call = (name: string) => calls.find((c) => c.name === name)!.cfg;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rounds-wiring-'));
  runDir = join(tmp, 'runs', 'demo');
  mkdirSync(join(tmp, 'base'));
  writeFileSync(join(tmp, 'base', 'config.json'), '{}');
  calls = [];
  sampled.length = 0;
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

test('each round: fresh prompts from the latest policy; reward on all pairs so far (weighted); rs and PPO wired; GAtt from the last policy', async () => {
  const result = await run();
  const r = (k: number, ...p: string[]) => join(runDir, `round_${k}`, ...p);
  expect(calls.map((c) => c.name)).toEqual([
    'sft', 'reward',
    'round_1/reward', 'round_1/rs',
    'round_2/reward', 'round_2/rs', 'round_2/ppo',
    'round_3/reward', 'round_3/rs', 'round_3/ppo',
    'gatt',
  ]);
  // Samples come from the latest policy: SFT, then round 1's rs, then round 2's PPO; seeds 1, 2, 3.
  expect(sampled).toEqual([
    { prompts: 5, seed: 1, model: join(runDir, 'sft', 'final') },
    { prompts: 5, seed: 2, model: join(runDir, 'round_1', 'rs', 'final') },
    { prompts: 5, seed: 3, model: join(runDir, 'round_2', 'ppo', 'final') },
  ]);
  // Round k's prompts are the k-th block of 5 held-out-free prompts.
  const heldOut = new Set((await readPrompts(packagePath('data', 'world', 'prompts_eval.jsonl'))).map(promptKey));
  const firstPrompts = (k: number) => readFileSync(r(k, 'pairs', 'pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).prompt);
  const seen = [1, 2, 3].flatMap((k) => firstPrompts(k).map(promptKey));
  expect(new Set(seen).size).toBe(15);
  expect(seen.some((k) => heldOut.has(k))).toBe(false);
  // 5 labelled pairs a round: 1 held out, 4 trained on.
  expect(JSON.parse(readFileSync(r(2, 'pairs', 'pairs.json'), 'utf8'))).toMatchObject({ prompts: 5, pairs: 5, train: 4, held_out: 1 });

  // Reward: round 1 continues the top-level reward model; its data: the config's own + each round's pairs twice.
  const train = (k: number) => r(k, 'pairs', 'labelled_train.jsonl');
  expect(call('round_1/reward').model.path).toBe(join(runDir, 'reward', 'final'));
  expect(call('round_3/reward').model.path).toBe(r(2, 'reward', 'final'));
  expect(call('round_3/reward').data.train).toEqual(['data/world/preferences.jsonl', train(1), train(1), train(2), train(2), train(3), train(3)]);
  // Staleness: the previous model vs the new one on the round's held-out pairs.
  expect(JSON.parse(readFileSync(r(2, 'reward_accuracy.json'), 'utf8'))).toMatchObject({ pairs: 1, before: 0.8, after: 0.8, before_model: r(1, 'reward', 'final') });
  expect(JSON.parse(readFileSync(r(1, 'reward_accuracy.json'), 'utf8'))).toMatchObject({ pairs: 1, before: 0.6, after: 0.8 });

  // rs: the latest policy, this round's reward model, the held-out prompts excluded, the pool from round 3 on.
  const evalPrompts = packagePath('data', 'world', 'prompts_eval.jsonl');
  expect(call('round_2/rs').model).toEqual({ path: r(1, 'rs', 'final'), adapter: null, reward_model: r(2, 'reward', 'final') });
  expect(call('round_2/rs').data.exclude).toEqual([evalPrompts]);
  expect(call('round_2/rs').rs).toEqual({ keep_best_across_rounds: false, pool: null });
  expect(call('round_3/rs').rs).toEqual({ keep_best_across_rounds: true, pool: r(2, 'rs', 'pool.jsonl') });
  // PPO: from the round's rs model, on a held-out-free copy of its prompts.
  expect(call('round_2/ppo').model).toEqual({ path: r(2, 'rs', 'final'), adapter: null, reward_model: r(2, 'reward', 'final') });
  expect(call('round_2/ppo').data.prompts).toBe(r(2, 'ppo_prompts.jsonl'));
  const ppoPrompts = readFileSync(r(2, 'ppo_prompts.jsonl'), 'utf8').trim().split('\n').map((l) => promptKey(JSON.parse(l).prompt));
  expect(ppoPrompts.some((k) => heldOut.has(k))).toBe(false);
  expect(ppoPrompts.length).toBeGreaterThan(1000);
  // GAtt: the last round's PPO policy, its rs rows mixed in.
  expect(call('gatt').model.path).toBe(r(3, 'ppo', 'final'));
  expect(call('gatt').data.mix).toEqual([r(3, 'rs', 'rs_train.jsonl')]);
  // ...and never a held-out evaluation prompt in that mix.
  expect(call('gatt').data.mix_exclude).toEqual([evalPrompts]);
  // Judged per round; the final evaluation has the last round's rs and PPO.
  expect(readFileSync(r(1, 'eval', 'rs.json'), 'utf8')).toContain('judge_score');
  expect(result.rounds.filter((s) => s.step === 'eval').map((s) => s.round)).toEqual([1, 2, 3]);
  expect(readFileSync(join(runDir, 'eval', 'rs.json'), 'utf8')).toContain('judge_score');
});

test('a rerun skips every round step; changing only PPO reruns from the first round with PPO; --force rounds redoes all', async () => {
  await run();
  calls = [];
  const again = await run();
  expect(again.rounds.every((s) => s.action === 'skipped')).toBe(true);
  expect(calls).toEqual([]);

  const changed = await run(['rounds.ppo.overrides={"model.reward_model": "x"}']);
  // Round 1 has no PPO: untouched. Round 2 reruns from its PPO on (its pairs, reward, rs are the same), and everything after.
  expect(changed.rounds.filter((s) => s.action === 'ran').map((s) => `${s.round}/${s.step}`)[0]).toBe('2/ppo');
  expect(changed.rounds.filter((s) => s.round === 1).every((s) => s.action === 'skipped')).toBe(true);

  calls = [];
  const forced = await runPipeline(config(['rounds.ppo.overrides={"model.reward_model": "x"}']), {
    stages: fakeStages(),
    rounds: deps,
    evaluate: fakeEval,
    force: ['rounds'],
    log: () => {},
    print: () => {},
  });
  expect(forced.rounds.every((s) => s.action === 'ran')).toBe(true);
  expect(calls[0]!.name).toBe('round_1/reward');
});

test('rounds.<stage>.by_round sets keys in its round only, on top of rounds.<stage>.overrides; a round that never runs is refused', async () => {
  await run(['rounds.rs.overrides={"data.prompts": "every.jsonl"}', 'rounds.rs.by_round={"2": {"data.prompts": "second.jsonl"}}']);
  expect([1, 2, 3].map((k) => call(`round_${k}/rs`).data.prompts)).toEqual(['every.jsonl', 'second.jsonl', 'every.jsonl']);
  expect(() => config(['rounds.ppo.by_round={"4": {"data.prompts": "x.jsonl"}}'])).toThrow(/rounds\.ppo\.by_round\.4[\s\S]*round 4 does not run \(rounds\.count is 3\)/);
  expect(() => config(['rounds.rs.by_round={"first": {}}'])).toThrow(/rounds\.rs\.by_round\.first: Invalid key/);
});

test("GAtt's mix keeps the held-out evaluation prompts out even when its overrides empty data.mix_exclude, and keeps the user's own files", async () => {
  const evalPrompts = packagePath('data', 'world', 'prompts_eval.jsonl');
  await run(['stages.gatt.overrides={"data.mix_exclude": []}']);
  expect(call('gatt').data.mix_exclude).toEqual([evalPrompts]);
  calls = [];
  await run(['stages.gatt.overrides={"data.mix_exclude": ["mine.jsonl"]}']);
  expect(call('gatt').data.mix_exclude).toEqual(['mine.jsonl', evalPrompts]);
});
