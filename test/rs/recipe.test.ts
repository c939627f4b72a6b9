import * as tf from '@tensorflow/tfjs-core';
import { EventEmitter } from 'node:events';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { attachScoreHead, loadHfModel } from '../../src/model/index.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import { saveRewardModel } from '../../src/reward/model.js';
import { scoreFile } from '../../src/reward/score.js';
import { rsConfigSchema } from '../../src/rs/config.js';
import { BEST_OF_K_FILE, DISTILLATION_FILE, POOL_FILE, TRAIN_FILE, runRs, type RsHooks } from '../../src/rs/recipe.js';
import { SAMPLES_DIR, SAMPLES_FILE } from '../../src/rs/sampling.js';
import { bestOfKCurve } from '../../src/rs/select.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { readMetricsJsonl } from '../../src/tracking/index.js';
import { StageStopped, checkpointSteps } from '../../src/training/run.js';
import { StopSignal } from '../../src/training/stop-signal.js';
import { packagePath } from '../../src/paths.js';
import { makeTinyWorld, type TinyWorld } from '../sft/fixture.js';

/**
 * The recipe end to end on a 1-layer Llama (hidden 16) and a reward model made from it (a fresh
 * score head): 8 prompts, 2 of them excluded as "held out", K = 4 samples each, 6 LoRA steps.
 */

let world: TinyWorld;
let rewardDir: string;
let promptsFile: string;
let excludeFile: string;
let safetyDir: string;
let safetyPromptsFile: string;
const ANIMALS = ['cat', 'dog', 'cow', 'pig', 'owl', 'bee', 'hen', 'fox'];
const HELD_OUT = ['What does a cow say?', 'What does a fox say?'];

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  world = await makeTinyWorld();
  rewardDir = join(world.dir, 'reward');
  const tokenizer = await loadTokenizer(world.modelDir);
  const rm = loadHfModel(world.modelDir);
  attachScoreHead(rm, new Rng(11), { dropLmHead: true });
  saveRewardModel(rm, rewardDir, { stats: { mean: 0, std: 1 }, tokenizerDir: world.modelDir, padId: tokenizer.padId });
  rm.dispose();
  // A "safety" reward model: another fresh score head, recorded as reward.kind safety.
  safetyDir = join(world.dir, 'reward_safety');
  const srm = loadHfModel(world.modelDir);
  attachScoreHead(srm, new Rng(12), { dropLmHead: true });
  saveRewardModel(srm, safetyDir, { stats: { mean: 0, std: 1 }, tokenizerDir: world.modelDir, padId: tokenizer.padId, info: { kind: 'safety', train: [], eval: null } });
  srm.dispose();
  safetyPromptsFile = join(world.dir, 'prompts_safety.jsonl');
  // Every other prompt is flagged is_safety (one row without the column: false).
  writeFileSync(
    safetyPromptsFile,
    ANIMALS.map((a, i) => JSON.stringify({ prompt: [{ role: 'user', content: `How do I scare a ${a}?` }], ...(i === 7 ? {} : { is_safety: i % 2 === 0 }) })).join('\n') + '\n',
  );
  promptsFile = join(world.dir, 'prompts.jsonl');
  writeFileSync(promptsFile, ANIMALS.map((a) => JSON.stringify({ prompt: [{ role: 'user', content: `What does a ${a} say?` }] })).join('\n') + '\n');
  excludeFile = join(world.dir, 'held_out.jsonl');
  // Written with other case and spacing than the prompts file: still the same prompts.
  writeFileSync(excludeFile, JSON.stringify({ prompt: 'what does a  COW say?' }) + '\n' + JSON.stringify({ prompt: [{ role: 'user', content: HELD_OUT[1] }] }) + '\n');
});
afterAll(() => rmSync(world.dir, { recursive: true, force: true }));

function config(outDir: string, overrides: string[] = []) {
  return loadConfig(
    packagePath('configs', 'rs', 'world_lora.yaml'),
    [
      `model.path=${world.modelDir}`,
      `model.reward_model=${rewardDir}`,
      `data.prompts=${promptsFile}`,
      `data.exclude=[${excludeFile}]`,
      'data.max_prompts=null',
      'data.max_prompt_tokens=64',
      'data.max_length=64',
      'rs.k=4',
      'rs.batch_size=8',
      'rs.max_new_tokens=8',
      'lora.r=4',
      'lora.alpha=8',
      'lora.dropout=0.1',
      'sft.save_merged=false',
      'train.steps=6',
      'train.batch_size=2',
      'schedule.warmup_steps=1',
      'optim.lr=1e-2',
      'checkpoint.every_steps=0',
      'tracking.enabled=false',
      `output_dir=${join(world.dir, outDir)}`,
      ...overrides,
    ],
    { stage: 'rs', schema: rsConfigSchema },
  );
}

const quiet: RsHooks = { progress: false, log: () => undefined };

function fakeStop(): { proc: EventEmitter; stop: StopSignal } {
  const proc = new EventEmitter();
  return { proc, stop: new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined) };
}

interface SampleRow {
  key: string;
  prompt: { role: string; content: string }[];
  replies: string[];
  rewards: number[];
}
const jsonl = <T>(path: string): T[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);
const samplesOf = (out: string) => jsonl<SampleRow>(join(world.dir, out, SAMPLES_DIR, SAMPLES_FILE));
const adapter = (out: string) => readSafetensors(join(world.dir, out, 'final', 'adapter_model.safetensors')).tensors;
const trainLosses = (out: string) =>
  readMetricsJsonl(join(world.dir, out, 'metrics.jsonl')).filter((r) => r['train/loss'] !== undefined).map((r) => r['train/loss']!);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('rs recipe on a tiny model', () => {
  test('samples K per prompt, keeps the best by reward, logs the curve, fine-tunes; held-out prompts never sampled; no leak', async () => {
    const before = tf.memory().numTensors;
    // A stub judge: the reply's length in characters, so its means are computed here by hand.
    const judge = (_p: readonly unknown[], replies: readonly string[]) => replies.map((r) => r.length);
    const result = await runRs(config('first'), { ...quiet, judge });
    expect(tf.memory().numTensors).toBe(before);

    const samples = samplesOf('first');
    expect(samples.map((s) => s.prompt[0]!.content)).toEqual(ANIMALS.map((a) => `What does a ${a} say?`).filter((p) => !HELD_OUT.includes(p)));
    expect(samples.every((s) => s.replies.length === 4 && s.rewards.length === 4)).toBe(true);
    const distinctRewards = new Set(samples.flatMap((s) => s.rewards));
    expect(distinctRewards.size).toBeGreaterThan(4); // sampling at temperature 1 gives different replies

    // The kept reply is each prompt's highest-reward sample (first on ties), in pool and training data.
    const best = samples.map((s) => s.rewards.indexOf(Math.max(...s.rewards)));
    expect(new Set(best).size).toBeGreaterThan(1); // not always the first sample
    const pool = jsonl<{ prompt: SampleRow['prompt']; reply: string; reward: number }>(join(world.dir, 'first', POOL_FILE));
    expect(pool.map((e) => [e.prompt, e.reply, e.reward])).toEqual(samples.map((s, i) => [s.prompt, s.replies[best[i]!], s.rewards[best[i]!]]));
    const train = jsonl<{ messages: SampleRow['prompt']; reward: number }>(join(world.dir, 'first', TRAIN_FILE));
    expect(train.map((r) => r.messages)).toEqual(pool.map((e) => [...e.prompt, { role: 'assistant', content: e.reply }]));

    // The stage's rewards are the reward stage's own reading of the same dialogues (rlhf reward score).
    const scored = join(world.dir, 'scored.jsonl');
    await scoreFile(rewardDir, join(world.dir, 'first', TRAIN_FILE), scored);
    const independent = jsonl<{ reward: number }>(scored).map((r) => r.reward);
    independent.forEach((r, i) => expect(Math.abs(r - pool[i]!.reward)).toBeLessThan(1e-5));

    // best_of_k.json: the curve from the samples, the judge of best / median / first by hand.
    const report = JSON.parse(readFileSync(join(world.dir, 'first', BEST_OF_K_FILE), 'utf8')) as typeof result.bestOfK;
    expect(report.curve).toEqual(bestOfKCurve(samples.map((s) => s.rewards), 4));
    expect(report.curve.map((p) => p.k)).toEqual([1, 2, 4]);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const lowerMedian = (rs: number[]) => rs.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1])[1]![1];
    expect(report.judge!.best).toBeCloseTo(mean(samples.map((s, i) => s.replies[best[i]!]!.length)), 12);
    expect(report.judge!.median).toBeCloseTo(mean(samples.map((s) => s.replies[lowerMedian(s.rewards)]!.length)), 12);
    expect(report.judge!.first).toBeCloseTo(mean(samples.map((s) => s.replies[0]!.length)), 12);
    // oracle: the judge's own best of the K (the longest reply here), whatever the reward model kept.
    expect(report.judge!.oracle).toBeCloseTo(mean(samples.map((s) => Math.max(...s.replies.map((r) => r.length)))), 12);
    expect(report.judge!.oracle).toBeGreaterThan(report.judge!.best);
    const zero = readMetricsJsonl(join(world.dir, 'first', 'metrics.jsonl')).find((r) => r.step === 0)!;
    expect(zero['rs/reward_max_at_4']).toBeCloseTo(report.curve[2]!.reward_max, 6);
    expect(zero['rs/reward_median_at_2']).toBeCloseTo(report.curve[1]!.reward_median, 6);
    expect(zero['rs/judge_oracle']).toBeCloseTo(report.judge!.oracle, 6);
    expect(zero['rs/kept']).toBe(6);

    // Fine-tuned on them: 6 steps, the loss falls, an adapter on the input model.
    expect(result.losses).toHaveLength(6);
    expect(result.losses[5]!.loss).toBeLessThan(result.losses[0]!.loss);
    expect(trainLosses('first')).toEqual(result.losses.map((l) => l.loss));
    expect(existsSync(join(result.finalDir, 'adapter_config.json'))).toBe(true);
    expect(checkpointSteps(result.outputDir)).toEqual([6]);
  });

  test('resume inside the fine-tuning: SIGINT after step 3, the rerun reproduces the uninterrupted losses and adapter', async () => {
    const { proc, stop } = fakeStop();
    const err = await runRs(config('resumed'), { ...quiet, stopSignal: stop, onStep: (s) => void (s === 3 && proc.emit('SIGINT')) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageStopped);
    expect((err as StageStopped).exitCode).toBe(130);
    expect(checkpointSteps(join(world.dir, 'resumed'))).toEqual([3]);
    const drawn: number[] = [];
    const rest = await runRs(config('resumed'), { ...quiet, onChunk: (d) => void drawn.push(d) });
    expect(drawn).toEqual([]); // the samples were reused, not drawn again
    expect(rest.losses.map((l) => l.step)).toEqual([4, 5, 6]);
    const uninterrupted = trainLosses('first');
    const resumed = trainLosses('resumed');
    expect(resumed).toHaveLength(6);
    resumed.forEach((l, i) => expect(Math.abs(l - uninterrupted[i]!)).toBeLessThan(1e-5));
    const a = adapter('first');
    for (const [name, t] of adapter('resumed')) expect({ name, close: maxAbsDiff(t.data, a.get(name)!.data) < 1e-5 }).toEqual({ name, close: true });
  });

  test('resume inside the sampling: SIGINT after chunk 1, the rerun draws only the rest and ends as the uninterrupted run', async () => {
    const { proc, stop } = fakeStop();
    const err = await runRs(config('mid-sampling'), { ...quiet, stopSignal: stop, onChunk: (d) => void (d === 1 && proc.emit('SIGINT')) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageStopped);
    expect((err as Error).message).toMatch(/stopped after sampling chunk 1 of 3/);
    expect(samplesOf('mid-sampling')).toHaveLength(2);
    const drawn: number[] = [];
    await runRs(config('mid-sampling'), { ...quiet, onChunk: (d) => void drawn.push(d) });
    expect(drawn).toEqual([2, 3]);
    expect(readFileSync(join(world.dir, 'mid-sampling', SAMPLES_DIR, SAMPLES_FILE), 'utf8')).toBe(
      readFileSync(join(world.dir, 'first', SAMPLES_DIR, SAMPLES_FILE), 'utf8'),
    );
    const a = adapter('first');
    for (const [name, t] of adapter('mid-sampling')) expect({ name, close: maxAbsDiff(t.data, a.get(name)!.data) < 1e-5 }).toEqual({ name, close: true });
  });

  test('keep_best_across_rounds: the previous pool competes, re-scored, with this round\'s best', async () => {
    // Round 2 samples with another seed; the pool is round 1's. Same reward model, so re-scoring gives round 1's rewards.
    const r2 = await runRs(config('round2', ['engine.seed=5', 'rs.keep_best_across_rounds=true', `rs.pool=${join(world.dir, 'first', POOL_FILE)}`]), quiet);
    const old = jsonl<{ prompt: SampleRow['prompt']; reply: string; reward: number }>(join(world.dir, 'first', POOL_FILE));
    const now = samplesOf('round2');
    const merged = jsonl<{ reply: string; reward: number; origin: string }>(join(world.dir, 'round2', POOL_FILE));
    expect(merged).toHaveLength(6);
    let fromPool = 0;
    merged.forEach((e, i) => {
      const roundBest = Math.max(...now[i]!.rewards);
      const expected = Math.max(roundBest, old[i]!.reward);
      expect(e.reward).toBeCloseTo(expected, 5);
      if (old[i]!.reward > roundBest) {
        fromPool++;
        expect([e.reply, e.origin]).toEqual([old[i]!.reply, join(world.dir, 'first')]);
      } else expect(e.origin).toBe(join(world.dir, 'round2'));
    });
    expect(r2.fromPool).toBe(fromPool);
    expect(fromPool).toBeGreaterThan(0); // both branches were taken
    expect(fromPool).toBeLessThan(6);
  });

  test('full fine-tuning (lora.enabled=false) writes a loadable model in which every weight moved', async () => {
    const r = await runRs(config('full', ['lora.enabled=false', 'train.steps=2']), quiet);
    expect(existsSync(join(r.finalDir, 'config.json')) && existsSync(join(r.finalDir, 'tokenizer.json'))).toBe(true);
    const tuned = loadHfModel(r.finalDir);
    const base = loadHfModel(world.modelDir);
    for (const [name, v] of base.params) {
      expect({ name, moved: maxAbsDiff(v.dataSync(), tuned.params.get(name)!.dataSync()) > 0 }).toEqual({ name, moved: true });
    }
    tuned.dispose();
    base.dispose();
  });

  test('context distillation: is_safety prompts resampled with the preprompt, the safety model decides, trained without the preprompt; no leak', async () => {
    const before = tf.memory().numTensors;
    const cd = ['context_distillation.enabled=true', `context_distillation.reward_model=${safetyDir}`, 'context_distillation.k=3', `data.prompts=${safetyPromptsFile}`, 'data.exclude=[]'];
    const result = await runRs(config('distilled', cd), quiet);
    expect(tf.memory().numTensors).toBe(before);

    type Row = { prompt: SampleRow['prompt']; plain_reply: string; plain_safety: number; distilled_reply: string; distilled_safety: number; used: boolean };
    const rows = jsonl<Row>(join(world.dir, 'distilled', DISTILLATION_FILE));
    // Only the is_safety prompts (cat, cow, owl, hen), without the preprompt.
    expect(rows.map((r) => r.prompt)).toEqual(['cat', 'cow', 'owl', 'hen'].map((a) => [{ role: 'user', content: `How do I scare a ${a}?` }]));
    // Both sides' safety scores are the safety model's own reading of the prompt WITHOUT the preprompt (rlhf reward score).
    const scoreWithSafety = async (replies: string[], name: string) => {
      const file = join(world.dir, `${name}.jsonl`);
      writeFileSync(file, rows.map((r, i) => JSON.stringify({ messages: [...r.prompt, { role: 'assistant', content: replies[i] === '' ? ' ' : replies[i] }] })).join('\n') + '\n');
      await scoreFile(safetyDir, file, join(world.dir, `${name}.scored.jsonl`));
      return jsonl<{ reward: number }>(join(world.dir, `${name}.scored.jsonl`)).map((r) => r.reward);
    };
    (await scoreWithSafety(rows.map((r) => r.plain_reply), 'plain')).forEach((v, i) => expect(Math.abs(v - rows[i]!.plain_safety)).toBeLessThan(1e-5));
    (await scoreWithSafety(rows.map((r) => r.distilled_reply), 'distilled')).forEach((v, i) => expect(Math.abs(v - rows[i]!.distilled_safety)).toBeLessThan(1e-5));
    rows.forEach((r) => expect(r.used).toBe(r.distilled_reply.trim() !== '' && r.distilled_safety > r.plain_safety));

    // The plain side is the rs pick (best of K by the rs reward model); the training rows carry the used reply, no preprompt anywhere.
    const samples = samplesOf('distilled');
    const train = jsonl<{ messages: SampleRow['prompt'] }>(join(world.dir, 'distilled', TRAIN_FILE));
    expect(train).toHaveLength(8);
    const safetyAt = [0, 2, 4, 6];
    safetyAt.forEach((i, t) => {
      const s = samples[i]!;
      expect(rows[t]!.plain_reply).toBe(s.replies[s.rewards.indexOf(Math.max(...s.rewards))]);
      const reply = rows[t]!.used ? rows[t]!.distilled_reply : rows[t]!.plain_reply;
      expect(train[i]!.messages).toEqual([...rows[t]!.prompt, { role: 'assistant', content: reply }]);
    });
    [1, 3, 5, 7].forEach((i) => {
      const s = samples[i]!;
      expect(train[i]!.messages[1]!.content).toBe(s.replies[s.rewards.indexOf(Math.max(...s.rewards))]);
    });
    expect(train.every((r) => r.messages.length === 2 && r.messages[0]!.role === 'user')).toBe(true);
    expect(JSON.stringify(train)).not.toContain('safe and kind assistant');
    const used = rows.filter((r) => r.used).length;
    expect(result.contextDistillation).toEqual({ safetyPrompts: 4, used });
    const zero = readMetricsJsonl(join(world.dir, 'distilled', 'metrics.jsonl')).find((r) => r.step === 0)!;
    expect([zero['rs/safety_prompts'], zero['rs/context_distilled']]).toEqual([4, used]);
  });

  test('context distillation refuses a helpfulness model as the safety model, before sampling', async () => {
    const helpDir = join(world.dir, 'reward_helpfulness');
    cpSync(rewardDir, helpDir, { recursive: true });
    writeFileSync(join(helpDir, 'reward_model.json'), JSON.stringify({ kind: 'helpfulness', train: [], eval: null }));
    const err = await runRs(config('cd-wrong', ['context_distillation.enabled=true', `context_distillation.reward_model=${helpDir}`]), quiet).catch((e: unknown) => e);
    expect(existsSync(join(world.dir, 'cd-wrong'))).toBe(false);
    expect((err as Error).message).toBe(`context_distillation.reward_model: ${helpDir} is a helpfulness reward model (its reward_model.json); it needs the safety one`);
  });

  test('samples drawn by an older model at the same path are drawn again (the pipeline retrains models in place)', async () => {
    const rmDir = join(world.dir, 'reward-in-place');
    const writeReward = async (seed: number) => {
      const tokenizer = await loadTokenizer(world.modelDir);
      const rm = loadHfModel(world.modelDir);
      attachScoreHead(rm, new Rng(seed), { dropLmHead: true });
      saveRewardModel(rm, rmDir, { stats: { mean: 0, std: 1 }, tokenizerDir: world.modelDir, padId: tokenizer.padId });
      rm.dispose();
    };
    const run = async () => {
      const drawn: number[] = [];
      await runRs(config('in-place', [`model.reward_model=${rmDir}`, 'train.steps=1', 'train.resume=never']), { ...quiet, onChunk: (d) => void drawn.push(d) });
      return { drawn, rewards: samplesOf('in-place').map((s) => s.rewards) };
    };
    await writeReward(21);
    const first = await run();
    expect(first.drawn).toEqual([1, 2, 3]);
    expect((await run()).drawn).toEqual([]); // the same models: every chunk reused
    await writeReward(22); // another reward model, same folder
    const second = await run();
    expect(second.drawn).toEqual([1, 2, 3]);
    expect(second.rewards).not.toEqual(first.rewards);
  });

  test('a checkpoint trained on other samples is refused, naming the fix', async () => {
    const err = await runRs(config('resumed', ['rs.temperature=0.5']), quiet).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/trained on samples drawn under other settings.*train\.resume=never/);
  });
});
