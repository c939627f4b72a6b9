/**
 * The iterative rounds on configs/pipeline/micro.yaml's tiny sizes (rounds.count=2, PPO in round 2):
 * the round folders and their wiring, the held-out evaluation prompts never reaching sampled pairs
 * or rejection-sampling data, and exact resumption after a kill between rounds and inside one.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { promptKey, readPrompts } from '../../src/data/prompts.js';
import { UserError } from '../../src/errors.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import { pipelineConfigSchema } from '../../src/pipeline/config.js';
import { judgeModels } from '../../src/pipeline/evaluate.js';
import { roundPrompts, splitHeldOut, type RoundsDeps } from '../../src/pipeline/rounds.js';
import { runPipeline, type PipelineResult } from '../../src/pipeline/runner.js';
import { realRounds, realStages } from '../../src/pipeline/stages.js';
import { readPipelineState } from '../../src/pipeline/state.js';
import { rsWiring } from '../../src/pipeline/stage-deps.js';
import type { RsConfig } from '../../src/rs/config.js';
import { runRs } from '../../src/rs/recipe.js';
import { StopSignal } from '../../src/training/stop-signal.js';
import type { ResolvedConfig } from '../../src/config/index.js';

let tmp: string;
let runDir: string;
let first: PipelineResult;
let snapshot: Snapshot;

const config = () =>
  loadConfig(
    'configs/pipeline/micro.yaml',
    [`output_dir=${runDir}`, `tracking.uri=${join(tmp, 'mlruns')}`, 'rounds.count=2', 'stages.dpo.enabled=false', 'stages.ppo.enabled=false'],
    { stage: 'pipeline', schema: pipelineConfigSchema },
  );

const run = (rounds: RoundsDeps = realRounds(), force: string[] = [], log: (m: string) => void = () => {}) =>
  runPipeline(config(), { stages: realStages(), rounds, evaluate: judgeModels, force, log, print: () => {} });

/** Every file of a round folder that a rerun must reproduce: data exactly, weights within float noise. */
interface Snapshot {
  text: Map<string, string>;
  weights: Map<string, Map<string, Float32Array>>;
}

const TEXT_FILES = /(^|\/)(pairs|labelled_train|labelled_eval|pool|rs_train|samples)\.jsonl$|(pairs|reward_accuracy|best_of_k|rs|ppo)\.json$/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function takeSnapshot(): Snapshot {
  const text = new Map<string, string>();
  const weights = new Map<string, Map<string, Float32Array>>();
  for (const k of [1, 2]) {
    for (const file of walk(join(runDir, `round_${k}`))) {
      const rel = relative(runDir, file);
      if (rel.includes('checkpoints')) continue;
      if (TEXT_FILES.test(rel)) text.set(rel, readFileSync(file, 'utf8'));
      else if (rel.endsWith('.safetensors') && rel.includes('/final/')) {
        weights.set(rel, new Map([...readSafetensors(file).tensors].map(([n, t]) => [n, Float32Array.from(t.data as ArrayLike<number>)])));
      }
    }
  }
  return { text, weights };
}

function expectSameAsFirst(tolerance: number): void {
  const now = takeSnapshot();
  expect([...now.text.keys()].sort()).toEqual([...snapshot.text.keys()].sort());
  for (const [file, content] of snapshot.text) expect({ file, same: now.text.get(file) === content }).toEqual({ file, same: true });
  expect([...now.weights.keys()].sort()).toEqual([...snapshot.weights.keys()].sort());
  for (const [file, tensors] of snapshot.weights) {
    for (const [name, data] of tensors) {
      const other = now.weights.get(file)!.get(name)!;
      let diff = 0;
      for (let i = 0; i < data.length; i++) diff = Math.max(diff, Math.abs(data[i]! - other[i]!));
      expect({ file, name, close: diff <= tolerance }).toEqual({ file, name, close: true });
    }
  }
}

const actions = (r: PipelineResult) => r.rounds.map((s) => `${s.round}/${s.step}:${s.action}`);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pipeline-rounds-'));
  runDir = join(tmp, 'runs', 'micro');
  first = await run();
  snapshot = takeSnapshot();
}, 600_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('round prompts: the k-th block, wrapping; held-out split: a seeded share, the rest in order', () => {
  const all = ['a', 'b', 'c', 'd', 'e'];
  expect(roundPrompts(all, 1, 2)).toEqual(['a', 'b']);
  expect(roundPrompts(all, 2, 2)).toEqual(['c', 'd']);
  expect(roundPrompts(all, 3, 2)).toEqual(['e', 'a']);
  expect(roundPrompts(all, 2, 9)).toEqual(all);
  const { train, held } = splitHeldOut(10, 0.25, 3);
  expect(held).toHaveLength(3); // round(2.5)
  expect([...train, ...held].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(train).toEqual([...train].sort((a, b) => a - b));
  expect(splitHeldOut(10, 0.25, 3)).toEqual({ train, held });
  expect(splitHeldOut(4, 0, 1)).toEqual({ train: [0, 1, 2, 3], held: [] });
});

test('two rounds: pairs → reward → staleness → rs → (PPO in round 2) → judged; GAtt from the last policy with its rs rows mixed in', () => {
  expect(snapshot.text.size).toBeGreaterThanOrEqual(16);
  expect(snapshot.weights.size).toBeGreaterThanOrEqual(5);
  expect(actions(first)).toEqual([
    '1/pairs:ran', '1/reward:ran', '1/staleness:ran', '1/rs:ran', '1/eval:ran',
    '2/pairs:ran', '2/reward:ran', '2/staleness:ran', '2/rs:ran', '2/ppo:ran', '2/eval:ran',
  ]);
  const resolved = (p: string) => readFileSync(join(runDir, p, 'config.resolved.yaml'), 'utf8');
  // Round 1 samples from the SFT model; its reward model continues the top-level one.
  expect(resolved('round_1/reward')).toContain(`path: ${join(runDir, 'reward', 'final')}`);
  expect(resolved('round_2/reward')).toContain(`path: ${join(runDir, 'round_1', 'reward', 'final')}`);
  // Round 2's rs samples from round 1's policy, with round 2's reward model, against round 1's pool.
  const rs2 = resolved('round_2/rs');
  expect(rs2).toContain(`path: ${join(runDir, 'round_1', 'rs', 'final', 'merged')}`);
  expect(rs2).toContain(`reward_model: ${join(runDir, 'round_2', 'reward', 'final')}`);
  expect(rs2).toContain(`pool: ${join(runDir, 'round_1', 'rs', 'pool.jsonl')}`);
  expect(resolved('round_1/rs')).toMatch(/pool: null/);
  // PPO in round 2 only, from round 2's rs model.
  expect(existsSync(join(runDir, 'round_1', 'ppo'))).toBe(false);
  expect(resolved('round_2/ppo')).toContain(`path: ${join(runDir, 'round_2', 'rs', 'final', 'merged')}`);
  // Staleness file: the previous and the new reward model on the round's held-out pairs.
  const acc = JSON.parse(readFileSync(join(runDir, 'round_2', 'reward_accuracy.json'), 'utf8'));
  expect(acc).toMatchObject({ round: 2, before_model: join(runDir, 'round_1', 'reward', 'final'), after_model: join(runDir, 'round_2', 'reward', 'final') });
  // Judged per round and at the end (rs = the last round's rs model, ppo = its PPO model).
  expect(readdirSync(join(runDir, 'round_1', 'eval')).sort()).toEqual(['rs.json']);
  expect(readdirSync(join(runDir, 'round_2', 'eval')).sort()).toEqual(['ppo.json', 'rs.json']);
  for (const m of ['base', 'sft', 'rs', 'ppo', 'gatt']) expect(existsSync(join(runDir, 'eval', `${m}.json`))).toBe(true);
  // GAtt: the last round's PPO policy, its rs rows mixed into the fine-tuning.
  const gatt = readFileSync(join(runDir, 'gatt', 'synth', 'gatt.resolved.yaml'), 'utf8');
  expect(gatt).toContain(join(runDir, 'round_2', 'ppo'));
  expect(gatt).toContain(join(runDir, 'round_2', 'rs', 'rs_train.jsonl'));
  expect(existsSync(join(runDir, 'gatt', 'synth', 'mix_train.jsonl'))).toBe(true);
});

test('no held-out evaluation prompt appears in any round\'s sampled pairs or rejection-sampling data, nor in GAtt\'s mix', async () => {
  const heldOut = new Set((await readPrompts('data/world/prompts_eval.jsonl')).map(promptKey));
  // The training prompts do hold held-out ones (data/world/prompts.jsonl: 331 rows), so the guard has work to do.
  expect((await readPrompts('data/world/prompts.jsonl')).filter((p) => heldOut.has(promptKey(p))).length).toBeGreaterThan(0);
  const rows = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  let checked = 0;
  for (const k of [1, 2]) {
    const r = join(runDir, `round_${k}`);
    const files = ['pairs/pairs.jsonl', 'pairs/labelled_train.jsonl', 'pairs/labelled_eval.jsonl', 'rs/samples/samples.jsonl', 'rs/pool.jsonl', 'rs/rs_train.jsonl', ...(k === 2 ? ['ppo_prompts.jsonl'] : [])];
    for (const f of files) {
      for (const row of rows(join(r, f))) {
        const prompt = row.prompt ?? row.messages.slice(0, -1);
        expect(heldOut.has(promptKey(prompt))).toBe(false);
        checked++;
      }
    }
  }
  // Nor GAtt's fine-tuning rows (its mix of plain rows: the pipeline appends eval.prompts to data.mix_exclude).
  for (const row of rows(join(runDir, 'gatt', 'synth', 'mix_train.jsonl'))) expect(heldOut.has(promptKey(row.messages.slice(0, -1)))).toBe(false);
  expect(readFileSync(join(runDir, 'gatt', 'synth', 'gatt.resolved.yaml'), 'utf8')).toMatch(/mix_exclude:\n\s+- \S*data\/world\/prompts_eval\.jsonl/);
  expect(checked).toBeGreaterThan(40);
  // PPO trains on the held-out-free copy of its prompts file.
  expect(readFileSync(join(runDir, 'round_2', 'ppo', 'config.resolved.yaml'), 'utf8')).toContain(`prompts: ${join(runDir, 'round_2', 'ppo_prompts.jsonl')}`);
  expect(rows(join(runDir, 'round_2', 'ppo_prompts.jsonl')).length).toBeGreaterThan(100);
});

test('killed between rounds (round 1 done, round 2 not started): the rerun skips round 1 and reproduces round 2 exactly', async () => {
  let calls = 0;
  const real = realRounds();
  const killing: RoundsDeps = {
    ...real,
    samplePairs: async (...args) => {
      if (++calls === 2) throw new UserError('killed', { exitCode: 143 });
      return real.samplePairs(...args);
    },
  };
  await expect(run(killing, ['rounds'])).rejects.toThrow(/round 2 pairs failed: killed/);
  const state = readPipelineState(runDir);
  expect(state['round_1/rs']?.status).toBe('finished');
  expect(state['round_2/pairs']?.status).toBe('failed');

  const again = await run();
  expect(actions(again)).toEqual([
    '1/pairs:skipped', '1/reward:skipped', '1/staleness:skipped', '1/rs:skipped', '1/eval:skipped',
    '2/pairs:ran', '2/reward:ran', '2/staleness:ran', '2/rs:ran', '2/ppo:ran', '2/eval:ran',
  ]);
  expectSameAsFirst(0);
}, 600_000);

test('killed inside a round (round 2 rs, SIGINT after its first step): the rerun skips what finished, resumes rs and ends as the uninterrupted run', async () => {
  const proc = new EventEmitter();
  const stop = new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined);
  const killing: RoundsDeps = {
    ...realRounds(),
    rs: {
      schema: realRounds().rs.schema,
      run: async (r, ctx) => {
        const round2 = (r.config as RsConfig).output_dir.includes('round_2');
        const hooks = round2 ? { stopSignal: stop, onStep: (s: number) => void (s === 1 && proc.emit('SIGINT')) } : {};
        await runRs(r as ResolvedConfig<RsConfig>, { log: ctx.log, ...rsWiring, ...hooks });
      },
    },
  };
  await expect(run(killing, ['rounds'])).rejects.toThrow(/round 2 rs failed/);
  expect(readPipelineState(runDir)['round_2/rs']?.status).toBe('failed');
  expect(readdirSync(join(runDir, 'round_2', 'rs', 'checkpoints'))).toEqual(['step_1']);

  const logged: string[] = [];
  const again = await run(realRounds(), [], (m) => void logged.push(m));
  expect(logged).toContain(`pipeline: round 2/2: rs: continuing → ${join(runDir, 'round_2', 'rs')}`);
  expect(logged).toContain(`rs: resumed from ${join(runDir, 'round_2', 'rs', 'checkpoints', 'step_1')} at step 1`);
  expect(actions(again)).toEqual([
    '1/pairs:skipped', '1/reward:skipped', '1/staleness:skipped', '1/rs:skipped', '1/eval:skipped',
    '2/pairs:skipped', '2/reward:skipped', '2/staleness:skipped', '2/rs:ran', '2/ppo:ran', '2/eval:ran',
  ]);
  // The rs run continued from step 1 (its metrics hold steps 1 and 2 once each).
  const steps = readFileSync(join(runDir, 'round_2', 'rs', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m['train/loss'] !== undefined).map((m) => m.step);
  expect(steps).toEqual([1, 2]);
  // Resuming restores weights, AdamW moments and RNG exactly; the float sums may differ in the last bits (as in test/rs/recipe.test.ts).
  expectSameAsFirst(1e-5);
}, 600_000);
