import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { UserError } from '../../src/errors.js';
import { llamaConfig } from '../../src/model/config.js';
import { loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { readSafetensors, writeSafetensors } from '../../src/model/io/safetensors.js';
import { attachScoreHead, initLlama, type LlamaModel } from '../../src/model/llama.js';

const cfg = llamaConfig({
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  eos_token_id: [2, 3],
});

let dir: string;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  dir = mkdtempSync(join(tmpdir(), 'hf-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectSameWeights(a: LlamaModel, b: LlamaModel): void {
  expect([...b.params.keys()]).toEqual([...a.params.keys()]);
  for (const [name, v] of a.params) {
    const w = b.param(name);
    expect(w.shape).toEqual(v.shape);
    // Bit-identical: compare the raw float32 bits, not values.
    expect(Buffer.from(new Uint32Array((w.dataSync() as Float32Array).slice().buffer)))
      .toEqual(Buffer.from(new Uint32Array((v.dataSync() as Float32Array).slice().buffer)));
  }
}

function catchUserError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

test('save → load is bit-identical, writes config and generation_config, keeps other files', () => {
  const model = initLlama(cfg, new Rng(11));
  const out = join(dir, 'm1');
  saveHfModel(model, out);
  writeFileSync(join(out, 'tokenizer.json'), '{"keep": true}');
  saveHfModel(model, out); // overwrite in place: tokenizer.json must survive
  expect(readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
  expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]); // no temp folders left
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  expect(config).toMatchObject({ model_type: 'llama', architectures: ['LlamaForCausalLM'], num_key_value_heads: 2, head_dim: 4, torch_dtype: 'float32' });
  expect(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8'))).toEqual({ _from_model_config: true, bos_token_id: 1, eos_token_id: [2, 3] });
  const back = loadHfModel(out);
  expect(back.config).toEqual({ ...model.config, head_dim: 4 });
  expectSameWeights(model, back);
  model.dispose();
  back.dispose();
});

test('sharded save → load through model.safetensors.index.json', () => {
  const model = initLlama(cfg, new Rng(12));
  const out = join(dir, 'sharded');
  saveHfModel(model, out, { maxShardBytes: 4000 });
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
  const shards = new Set(Object.values(index.weight_map));
  expect(shards.size).toBeGreaterThan(2);
  expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
  expect(index.metadata.total_size).toBe(4 * model.numParameters());
  const back = loadHfModel(out);
  expectSameWeights(model, back);
  model.dispose();
  back.dispose();
});

test('BF16 save rounds every weight to bfloat16', () => {
  const model = initLlama(cfg, new Rng(13));
  const out = join(dir, 'bf16');
  saveHfModel(model, out, { dtype: 'BF16' });
  expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
  const back = loadHfModel(out);
  for (const [name, v] of model.params) {
    const a = v.dataSync();
    const b = back.param(name).dataSync();
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * 2 ** -8);
    expect(new Uint32Array((b as Float32Array).slice().buffer).every((bits) => (bits & 0xffff) === 0)).toBe(true);
  }
  model.dispose();
  back.dispose();
});

test('a reward model (score head, no lm_head) saves as LlamaForSequenceClassification and loads back', () => {
  const model = initLlama(cfg, new Rng(14));
  attachScoreHead(model, new Rng(15), { dropLmHead: true });
  const out = join(dir, 'rm');
  saveHfModel(model, out);
  expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures).toEqual(['LlamaForSequenceClassification']);
  const back = loadHfModel(out);
  expect(back.hasLmHead).toBe(false);
  expect(back.scoreHead).not.toBeNull();
  expectSameWeights(model, back);
  const ids = tf.tensor2d([[1]], undefined, 'int32');
  expect(() => back.forward({ inputIds: ids })).toThrow(/no LM head/);
  ids.dispose();
  model.dispose();
  back.dispose();
});

test('a renamed, a missing and a mis-shaped tensor are reported together in one error', () => {
  const model = initLlama(cfg, new Rng(16));
  const out = join(dir, 'broken');
  saveHfModel(model, out);
  model.dispose();
  const path = join(out, 'model.safetensors');
  const { tensors } = readSafetensors(path);
  const renamed = tensors.get('model.layers.0.self_attn.q_proj.weight')!;
  tensors.delete('model.layers.0.self_attn.q_proj.weight');
  tensors.set('model.layers.0.self_attn.query.weight', renamed);
  tensors.delete('model.layers.1.post_attention_layernorm.weight');
  tensors.set('model.layers.1.mlp.up_proj.weight', { shape: [16, 24], data: new Float32Array(16 * 24) });
  writeSafetensors(path, tensors);
  const before = tf.memory().numTensors;
  const msg = catchUserError(() => loadHfModel(out));
  expect(tf.memory().numTensors).toBe(before); // nothing allocated for a bad checkpoint
  expect(msg).toContain(out);
  expect(msg).toContain('missing tensors (2): model.layers.0.self_attn.q_proj.weight, model.layers.1.post_attention_layernorm.weight');
  expect(msg).toContain('unexpected tensors (1): model.layers.0.self_attn.query.weight (in model.safetensors)');
  expect(msg).toContain('mis-shaped tensors (1): model.layers.1.mlp.up_proj.weight is [16, 24] in model.safetensors, expected [24, 16]');
});

test('folders without weights or with a bad config fail with the path in the message', () => {
  const empty = join(dir, 'empty');
  const model = initLlama(cfg, new Rng(1));
  saveHfModel(model, empty);
  model.dispose();
  rmSync(join(empty, 'model.safetensors'));
  expect(catchUserError(() => loadHfModel(empty))).toContain('no model.safetensors');
  writeFileSync(join(empty, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 8, hidden_size: 10, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 3 }));
  const msg = catchUserError(() => loadHfModel(empty));
  expect(msg).toContain(join(empty, 'config.json'));
  expect(msg).toContain('num_attention_heads (4) must be a multiple of num_key_value_heads (3)');
  expect(msg).toContain('head_dim (2.5) must be an even integer');
});
