/**
 * The DPO recipe end to end on a tiny model: the reference is exact before any update (rewards 0,
 * sigmoid loss log 2) for LoRA, full + frozen copy and precomputed reference log-probs; training
 * separates the pairs with TRL's metric names; a stopped run resumes to the same weights; the judge
 * hook is scored and written; config and input mistakes are clear errors.
 */
import { EventEmitter } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../../src/config/index.js';
import { dpoConfigSchema } from '../../src/dpo/config.js';
import { runDpo, type PromptJudge } from '../../src/dpo/recipe.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import { initLlama, llamaConfig, loadHfModel, saveHfModel } from '../../src/model/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { StageStopped } from '../../src/training/run.js';
import { StopSignal } from '../../src/training/stop-signal.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';
const quiet = { log: () => undefined, progressStream: { write: () => true } };
const TRL_KEYS = ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'logits/chosen', 'logits/rejected'];

let root: string;
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  root = mkdtempSync(join(tmpdir(), 'dpo-recipe-'));
  const tokenizer = await loadTokenizer(TOKENIZER);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId,
  });
  const base = initLlama(cfg, new Rng(5));
  saveHfModel(base, join(root, 'base'));
  base.dispose();
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOKENIZER, f), join(root, 'base', f));
  const rows = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => ({
      prompt: [{ role: 'user', content: `What is ${i + offset} plus 1?` }],
      chosen: [{ role: 'assistant', content: `It is ${i + offset + 1}.` }],
      rejected: [{ role: 'assistant', content: 'No.' }],
      strength: ['better', 'slightly_better'][i % 2],
    }));
  writeFileSync(join(root, 'train.jsonl'), rows(16, 0).map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(root, 'eval.jsonl'), rows(4, 100).map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(root, 'prompts.jsonl'), [0, 1, 2].map((i) => JSON.stringify({ prompt: `What is ${i} plus 1?` })).join('\n') + '\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(name: string, overrides: string[] = []) {
  const file = join(root, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'stage: dpo',
      `output_dir: ${join(root, name)}`,
      `model: { path: ${join(root, 'base')} }`,
      `data: { train: ${join(root, 'train.jsonl')}, eval: ${join(root, 'eval.jsonl')}, max_length: 64, eval_prompts: ${join(root, 'prompts.jsonl')} }`,
      'engine: { backend: wasm, seed: 3 }',
      'tracking: { enabled: false }',
      'lora: { r: 4, alpha: 8, target_modules: all-linear }',
      'dpo: { beta: 0.5, eval_batch_size: 3 }',
      'eval: { max_new_tokens: 4, batch_size: 2 }',
      'optim: { lr: 0.02 }',
      'schedule: { type: constant, warmup_steps: 0 }',
      'train: { steps: 6, batch_size: 4, eval_every: 3 }',
      'checkpoint: { every_steps: 3, keep_last: 2 }',
      'save_merged: false',
    ].join('\n') + '\n',
  );
  return loadConfig(file, overrides, { stage: 'dpo', schema: dpoConfigSchema });
}

function metricRows(name: string): Array<Record<string, number>> {
  return readFileSync(join(root, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const r = JSON.parse(l);
    return { step: r.step, ...(r.metrics ?? r) };
  });
}

describe.each([
  ['LoRA (adapters off)', []],
  ['full fine-tuning (frozen copy)', ['lora.enabled=false']],
  ['full fine-tuning, precomputed reference', ['lora.enabled=false', 'dpo.precompute_ref_log_probs=true']],
  ['LoRA, precomputed reference', ['dpo.precompute_ref_log_probs=true']],
])('before any update, %s', (label, extra) => {
  test('the implicit rewards are 0 within 1e-6 and the sigmoid loss is log 2 within 1e-6', async () => {
    const name = `zero-${label.replace(/\W+/g, '-')}`;
    const first: Array<Record<string, number>> = [];
    await runDpo(config(name, [...extra, 'train.steps=1', 'checkpoint.every_steps=0']), { ...quiet, onStep: (_s, m) => first.push(m) });
    // Step 1's metrics come from the forward pass before its update; step 0 is the held-out evaluation.
    const m = first[0]!;
    const at0 = metricRows(name).find((r) => r.step === 0)!;
    for (const r of [m, { 'train/loss': at0['eval/loss']!, 'rewards/chosen': at0['eval/rewards/chosen']!, 'rewards/rejected': at0['eval/rewards/rejected']!, 'rewards/margins': at0['eval/rewards/margins']! }]) {
      expect(Math.abs(r['rewards/chosen']!)).toBeLessThan(1e-6);
      expect(Math.abs(r['rewards/rejected']!)).toBeLessThan(1e-6);
      expect(Math.abs(r['rewards/margins']!)).toBeLessThan(1e-6);
      expect(Math.abs(r['train/loss']! - Math.LN2)).toBeLessThan(1e-6);
    }
    expect(m['rewards/accuracies']).toBe(0); // strictly greater, as TRL counts
  });
});

test('training separates the pairs, logs TRL\'s metric names, leaks no tensor per step, and saves a PEFT adapter', async () => {
  const base = ['train.eval_every=0', 'checkpoint.every_steps=0', 'train.resume=never'];
  let before = tf.memory().numTensors;
  await runDpo(config('sep', [...base, 'train.steps=1']), quiet);
  const oneStep = tf.memory().numTensors - before;
  before = tf.memory().numTensors;
  const result = await runDpo(config('sep', [...base, 'train.steps=12']), quiet);
  expect(tf.memory().numTensors - before).toBe(oneStep);
  expect(result.steps).toBe(12);
  expect(result.eval!['eval/rewards/accuracies']).toBe(1);
  expect(result.eval!['eval/rewards/margins']).toBeGreaterThan(0.5);
  expect(result.eval!['eval/loss']).toBeLessThan(Math.LN2);

  const rows = metricRows('sep');
  for (const k of ['train/loss', ...TRL_KEYS, 'train/grad_norm', 'train/lr', 'train/epoch']) expect(rows[0]).toHaveProperty(k);
  for (const k of ['eval/loss', ...TRL_KEYS.map((k) => `eval/${k}`)]) expect(rows[rows.length - 1]).toHaveProperty(k);
  const adapter = JSON.parse(readFileSync(join(root, 'sep', 'final', 'adapter_config.json'), 'utf8'));
  expect(adapter.base_model_name_or_path).toBe(join(root, 'base'));
  expect([...readSafetensors(join(root, 'sep', 'final', 'adapter_model.safetensors')).tensors.keys()].every((k) => k.startsWith('base_model.model.'))).toBe(true);
});

test('precomputed reference log-probs give the same losses as a reference forward every step', async () => {
  const steps = ['train.steps=3', 'train.eval_every=0', 'checkpoint.every_steps=0'];
  const a: number[] = [];
  const b: number[] = [];
  await runDpo(config('ref-live', steps), { ...quiet, onStep: (_s, m) => a.push(m['train/loss']!) });
  await runDpo(config('ref-pre', [...steps, 'dpo.precompute_ref_log_probs=true']), { ...quiet, onStep: (_s, m) => b.push(m['train/loss']!) });
  a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThan(1e-6));
});

test('a run stopped by SIGTERM resumes to exactly the weights of an uninterrupted run', async () => {
  const losses = ['dpo.loss_type=[sigmoid, sft]', 'dpo.loss_weights=[1, 0.5]'];
  await runDpo(config('whole', losses), quiet);
  expect(readdirSync(join(root, 'whole', 'checkpoints'))).toEqual(['step_3', 'step_6']);

  const proc = new EventEmitter();
  const stopSignal = new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined);
  const stopped = runDpo(config('cut', losses), { ...quiet, stopSignal, onStep: (step) => void (step === 2 && proc.emit('SIGTERM')) });
  await expect(stopped).rejects.toBeInstanceOf(StageStopped);
  await expect(stopped).rejects.toMatchObject({ exitCode: 143 });
  expect(readdirSync(join(root, 'cut', 'checkpoints'))).toEqual(['step_2']);
  expect(existsSync(join(root, 'cut', 'final'))).toBe(false);

  const resumed = await runDpo(config('cut', losses), quiet);
  expect(resumed.steps).toBe(6);
  const weights = (name: string) => readSafetensors(join(root, name, 'final', 'adapter_model.safetensors')).tensors;
  const a = weights('whole');
  const b = weights('cut');
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [k, v] of a) expect(Array.from(b.get(k)!.data)).toEqual(Array.from(v.data));
  // The metrics file holds each step once (the interrupted run's rows after its checkpoint are trimmed).
  expect(metricRows('cut').filter((r) => r['train/loss'] !== undefined).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
});

test('with a judge, held-out prompts are answered, scored (eval/judge_score) and written to eval.json', async () => {
  const seen: number[] = [];
  const judge: PromptJudge = (prompts, replies) => {
    seen.push(prompts.length);
    expect(replies).toHaveLength(prompts.length);
    return { mean: 0.25, byFamily: { arithmetic: { mean: 0.25 } }, scores: prompts.map(() => 0.25) };
  };
  await runDpo(config('judged', ['train.steps=2', 'train.eval_every=1', 'checkpoint.every_steps=0']), { ...quiet, judge });
  expect(seen).toEqual([3, 3, 3]); // step 0, step 1, final
  const rows = metricRows('judged');
  expect(rows.filter((r) => r['eval/judge_score'] !== undefined).map((r) => r.step)).toEqual([0, 1, 2]);
  const e = JSON.parse(readFileSync(join(root, 'judged', 'eval.json'), 'utf8'));
  expect(e).toMatchObject({ judge_score: 0.25, by_family: { arithmetic: 0.25 }, count: 3 });
  expect(e.samples[0].prompt).toBe('What is 0 plus 1?');
});

test('full fine-tuning writes an HF folder; LoRA with save_merged also writes merged/ that loads', async () => {
  await runDpo(config('full', ['lora.enabled=false', 'train.steps=1', 'train.eval_every=0', 'checkpoint.every_steps=0']), quiet);
  expect(existsSync(join(root, 'full', 'final', 'config.json'))).toBe(true);
  expect(existsSync(join(root, 'full', 'final', 'tokenizer.json'))).toBe(true);
  await runDpo(config('merged', ['save_merged=true', 'train.steps=1', 'train.eval_every=0', 'checkpoint.every_steps=0']), quiet);
  const m = loadHfModel(join(root, 'merged', 'final', 'merged'));
  m.dispose();
});

test('mistakes are clear errors: loss_weights of the wrong length, an adapter folder as model.path, a missing strength', async () => {
  expect(() => config('bad1', ['dpo.loss_type=[sigmoid, ipo]', 'dpo.loss_weights=[1]'])).toThrow(/dpo\.loss_weights.*has 1 weights but dpo\.loss_type has 2 losses/s);
  expect(() => config('bad2', ['dpo.label_smoothing=0.5'])).toThrow(/dpo\.label_smoothing/);
  const adapterOnly = join(root, 'adapter-only');
  mkdirSync(adapterOnly, { recursive: true });
  writeFileSync(join(adapterOnly, 'adapter_config.json'), '{}');
  await expect(runDpo(config('bad3', [`model.path=${adapterOnly}`]), quiet)).rejects.toThrow(/is a LoRA adapter folder; set model.path to its base model and model.adapter/);
  const nostrength = join(root, 'nostrength.jsonl');
  writeFileSync(nostrength, JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c' }) + '\n');
  const weights = 'dpo.strength_weights={significantly_better: 1, better: 1, slightly_better: 0.5, negligibly_better: 0}';
  await expect(runDpo(config('bad4', [`data.train=${nostrength}`, weights]), quiet)).rejects.toThrow(/nostrength\.jsonl: dpo\.strength_weights is set, which needs a "strength" column; rows without one: 1$/);
});
