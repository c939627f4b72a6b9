import { EventEmitter } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { initLlama, llamaConfig, loadHfModel, saveHfModel } from '../../src/model/index.js';
import { rewardConfigSchema } from '../../src/reward/config.js';
import { readRewardStats } from '../../src/reward/model.js';
import { readRewardInfo } from '../../src/model/io/reward-kind.js';
import { runReward } from '../../src/reward/recipe.js';
import { scoreFile } from '../../src/reward/score.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { StageStopped } from '../../src/training/run.js';
import { StopSignal } from '../../src/training/stop-signal.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';
const STRENGTHS = ['significantly_better', 'better', 'slightly_better', 'negligibly_better'] as const;
const quiet = { log: () => undefined, progressStream: { write: () => true } };

let root: string;
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  root = mkdtempSync(join(tmpdir(), 'reward-recipe-'));
  // A tiny base model with the fixture tokenizer beside it.
  const tokenizer = await loadTokenizer(TOKENIZER);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId,
  });
  const base = initLlama(cfg, new Rng(11));
  saveHfModel(base, join(root, 'base'));
  base.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOKENIZER, f), join(root, 'base', f));
  // Separable pairs: the chosen answer is polite, the rejected one rude.
  const rows = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => ({
      prompt: [{ role: 'user', content: `What is ${i + offset} plus 1?` }],
      chosen: [{ role: 'assistant', content: `It is ${i + offset + 1}. Thank you.` }],
      rejected: [{ role: 'assistant', content: `No. Go away. Bad.` }],
      strength: STRENGTHS[i % 4],
    }));
  writeFileSync(join(root, 'train.jsonl'), rows(32, 0).map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(root, 'eval.jsonl'), rows(8, 100).map((r) => JSON.stringify(r)).join('\n') + '\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(name: string, overrides: string[] = []) {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'stage: reward',
      `output_dir: ${join(root, name)}`,
      `model: { path: ${join(root, 'base')} }`,
      `data: { train: ${join(root, 'train.jsonl')}, eval: ${join(root, 'eval.jsonl')}, max_length: 64 }`,
      'engine: { backend: wasm, seed: 3 }',
      'tracking: { enabled: false }',
      'lora: { r: 4, alpha: 8, dropout: 0.1, target_modules: [q_proj, v_proj] }',
      'optim: { lr: 0.01 }',
      'schedule: { warmup_steps: 2 }',
      'train: { steps: 6, batch_size: 4, eval_every: 3 }',
      'checkpoint: { every_steps: 3, keep_last: 2 }',
      'reward: { margin: large, center_rewards_coefficient: 0.01, eval_batch_size: 8, stats_max_pairs: 16 }',
    ].join('\n') + '\n',
  );
  return loadConfig(file, overrides, { stage: 'reward', schema: rewardConfigSchema });
}

test('reward.kind and data.mix: a safety model records what it scores and the pairs of each file', async () => {
  const file = join(root, 'mix.yaml');
  config('tmp'); // writes tmp.yaml, the shared test config
  writeFileSync(
    file,
    readFileSync(join(root, 'tmp.yaml'), 'utf8')
      .replace(/output_dir: .*/, `output_dir: ${join(root, 'mix')}`)
      .replace(/data: \{ train: [^,]+,/, `data: { train: [${join(root, 'train.jsonl')}, ${join(root, 'eval.jsonl')}], mix: [0.8, 0.2],`),
  );
  const cfg = loadConfig(file, ['train.steps=1', 'train.eval_every=0', 'checkpoint.every_steps=0', 'reward.kind=safety'], { stage: 'reward', schema: rewardConfigSchema });
  await runReward(cfg, quiet);
  const info = readRewardInfo(join(root, 'mix', 'final'))!;
  // 32 + 8 rows at 80/20: T = min(32 / 0.8, 8 / 0.2) = 40 → 32 and 8
  expect(info.kind).toBe('safety');
  expect(info.train.map((t) => t.pairs)).toEqual([32, 8]);
  expect(info.train[0]!.file).toBe(join(root, 'train.jsonl'));
});

function finalWeights(dir: string): Map<string, number[]> {
  const m = loadHfModel(join(dir, 'final'));
  const out = new Map([...m.params].map(([k, v]) => [k, Array.from(v.dataSync())]));
  m.dispose();
  return out;
}

test('trains to separate the pairs and saves a LlamaForSequenceClassification folder with reward stats', async () => {
  // Training steps leave no tensor behind: a 30-step run leaves as many as a 1-step one. (Not
  // zero: AdamW and LoraLinear construction currently keep their zeros() initialisers alive.)
  const sepOverrides = ['optim.lr=0.03', 'train.eval_every=0', 'checkpoint.every_steps=0', 'train.resume=never'];
  let before = tf.memory().numTensors;
  await runReward(config('sep', [...sepOverrides, 'train.steps=1']), quiet);
  const oneStepLeak = tf.memory().numTensors - before;
  before = tf.memory().numTensors;
  const result = await runReward(config('sep', [...sepOverrides, 'train.steps=30']), quiet);
  expect(tf.memory().numTensors - before).toBe(oneStepLeak);
  expect(result.steps).toBe(30);
  expect(result.eval!.accuracy).toBe(1);
  expect(result.eval!.margin).toBeGreaterThan(1);
  expect(Object.keys(result.eval!.byStrength).sort()).toEqual([...STRENGTHS].sort());

  const final = join(root, 'sep', 'final');
  const cfg = JSON.parse(readFileSync(join(final, 'config.json'), 'utf8'));
  expect(cfg.architectures).toEqual(['LlamaForSequenceClassification']);
  expect(cfg.num_labels).toBe(1);
  expect(existsSync(join(final, 'tokenizer.json'))).toBe(true);
  // where the model reads, recorded for every stage that scores with it (reward.read_at, default turn_end)
  expect(JSON.parse(readFileSync(join(final, 'reward_read.json'), 'utf8'))).toEqual({ read_at: 'turn_end' });
  const stats = readRewardStats(final)!;
  expect(stats).toEqual(result.stats);
  expect(stats.count).toBe(32); // 16 pairs, both sides
  expect(stats.std).toBeGreaterThan(0);

  const evalJson = JSON.parse(readFileSync(join(root, 'sep', 'eval.json'), 'utf8'));
  expect(evalJson.accuracy).toBe(1);
  expect(evalJson.pairs_by_strength).toEqual({ significantly_better: 2, better: 2, slightly_better: 2, negligibly_better: 2 });

  const metrics = readFileSync(join(root, 'sep', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const keys = new Set(metrics.flatMap((m) => Object.keys(m.metrics ?? m)));
  for (const k of ['train/loss', 'train/accuracy', 'train/margin', 'train/rewards/chosen', 'train/rewards/rejected', 'eval/accuracy', 'eval/accuracy_by_strength/better', 'eval/accuracy_by_strength/negligibly_better']) {
    expect(keys).toContain(k);
  }

  // rlhf reward score: preference rows gain reward_chosen / reward_rejected, others reward.
  const data = join(root, 'score.jsonl');
  writeFileSync(
    data,
    [
      JSON.stringify({ id: 'p', prompt: [{ role: 'user', content: 'What is 5 plus 1?' }], chosen: [{ role: 'assistant', content: 'It is 6. Thank you.' }], rejected: [{ role: 'assistant', content: 'No. Go away. Bad.' }] }),
      JSON.stringify({ id: 'm', messages: [{ role: 'user', content: 'What is 5 plus 1?' }, { role: 'assistant', content: 'It is 6. Thank you.' }] }),
    ].join('\n') + '\n',
  );
  const out = join(root, 'scored.jsonl');
  expect(await scoreFile(final, data, out, { normalize: true })).toBe(2);
  const scored = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(scored[0].id).toBe('p');
  expect(scored[0].reward_chosen).toBeGreaterThan(scored[0].reward_rejected);
  // The same text scored as a dialogue and as the chosen side of a pair gets the same reward.
  expect(scored[1].reward).toBeCloseTo(scored[0].reward_chosen, 5);
});

test('a run stopped by SIGTERM resumes to exactly the weights of an uninterrupted run', async () => {
  await runReward(config('whole'), quiet);
  expect(readdirSync(join(root, 'whole', 'checkpoints'))).toEqual(['step_3', 'step_6']);

  // Interrupted: the signal arrives during step 2; the run finishes step 2, checkpoints, exits 143.
  const proc = new EventEmitter();
  const stopSignal = new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined);
  const progressStream = { write: (line: string) => (line.includes('step 1/') && proc.emit('SIGTERM'), true) };
  const stopped = runReward(config('cut'), { log: () => undefined, progressStream, stopSignal });
  await expect(stopped).rejects.toBeInstanceOf(StageStopped);
  await expect(stopped).rejects.toMatchObject({ exitCode: 143 });
  expect(readdirSync(join(root, 'cut', 'checkpoints'))).toEqual(['step_1']);
  expect(existsSync(join(root, 'cut', 'final'))).toBe(false);

  // Resumed (train.resume: auto) to the end.
  const resumed = await runReward(config('cut'), quiet);
  expect(resumed.steps).toBe(6);
  const a = finalWeights(join(root, 'whole'));
  const b = finalWeights(join(root, 'cut'));
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, v] of a) expect(b.get(k)).toEqual(v);

  // A checkpoint does not fit a run whose data is batched differently.
  await expect(runReward(config('cut', ['train.batch_size=2', 'train.steps=8']), quiet)).rejects.toThrow(
    /step_6: written for 8 training batches, this run has 16 \(data, batch size or group_by_length changed\)/,
  );
});

test('a row without the strength the margin needs is an error naming the file and row', async () => {
  const file = join(root, 'nostrength.jsonl');
  writeFileSync(file, JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c' }) + '\n' + JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c', strength: 'better' }) + '\n');
  await expect(runReward(config('bad', [`data.train=${file}`]), quiet)).rejects.toThrow(/nostrength\.jsonl: reward\.margin is "large", which needs a "strength" column; rows without one: 1$/);
});

test('data.train takes a list of files, read as one set; a bad row is reported in its own file', async () => {
  const second = join(root, 'second.jsonl');
  writeFileSync(second, readFileSync(join(root, 'train.jsonl'), 'utf8').split('\n').slice(0, 8).join('\n') + '\n');
  const logs: string[] = [];
  const cfg = config('two', [`data.train=[${join(root, 'train.jsonl')}, ${second}]`, 'train.steps=1', 'train.eval_every=1']);
  await runReward(cfg, { ...quiet, log: (m: string) => logs.push(m) });
  expect(logs.find((l) => l.startsWith('reward: ') && l.includes('training pairs'))).toMatch(/^reward: 40 training pairs, 8 eval pairs/);

  const bad = join(root, 'bad-second.jsonl');
  writeFileSync(bad, JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c' }) + '\n');
  await expect(runReward(config('two-bad', [`data.train=[${join(root, 'train.jsonl')}, ${bad}]`]), quiet)).rejects.toThrow(/bad-second\.jsonl: reward\.margin is "large"/);
});
