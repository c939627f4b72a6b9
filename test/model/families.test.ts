/**
 * Family config checks: what is refused by name (unknown families, math-changing keys this package
 * does not compute) and what transformers writes that changes nothing (accepted); and that a
 * deliberately wrong variant of a family (Mistral's window ignored) fails transformers' reference.
 */
import { join } from 'node:path';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { loadHfModel, parseLlamaConfig } from '../../src/model/index.js';
import { describeModel } from '../../src/model/describe.js';
import { llamaParamShapes } from '../../src/model/names.js';
import { saveHfModel } from '../../src/model/index.js';
import { Rng } from '../../src/engine/rng.js';
import { ALL_LINEAR, injectLora, saveAdapter } from '../../src/lora/index.js';
import { mergeAdapterFolder } from '../../src/lora/merge.js';
import { maxLogitDiff, transformers5Logits, TRANSFORMERS5_DIR } from '../helpers/transformers5.js';

const FIX = TRANSFORMERS5_DIR;
const sizes = { vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 2, num_attention_heads: 2 };
const fixtureConfig = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIX, name, 'config.json'), 'utf8'));

describe('family config keys', () => {
  it('an unknown family is refused with the supported list', () => {
    expect(() => parseLlamaConfig({ ...sizes, model_type: 'gemma2' }, 'c.json')).toThrow(
      'c.json: model_type "gemma2" is not supported (supported: llama, qwen2, qwen3, mistral)',
    );
  });

  it.each([
    [{ model_type: 'qwen2', use_sliding_window: true, sliding_window: 4 }, 'use_sliding_window: true is not supported for qwen2'],
    [{ model_type: 'qwen3', use_sliding_window: true, sliding_window: 4 }, 'use_sliding_window: true is not supported for qwen3'],
    [{ model_type: 'llama', layer_types: ['full_attention', 'sliding_attention'] }, 'layer_types ["sliding_attention"] is not supported'],
    [{ model_type: 'llama', attn_logit_softcapping: 50 }, 'attn_logit_softcapping is not supported: attention logit soft-capping'],
    [{ model_type: 'llama', partial_rotary_factor: 0.5 }, 'partial_rotary_factor is not supported'],
    [{ model_type: 'qwen2', quantization_config: { quant_method: 'gptq' } }, 'quantization_config is not supported: quantized weights'],
    [{ model_type: 'llama', attention_dropout: 0.1 }, 'attention_dropout must be 0 (got 0.1)'],
    [{ model_type: 'mistral', sliding_window: 0 }, 'sliding_window must be a positive integer or null (got 0)'],
  ])('%j is refused by name', (extra, message) => {
    expect(() => parseLlamaConfig({ ...sizes, ...extra }, 'c.json')).toThrow(message);
  });

  it('keys transformers writes that change nothing for these families are accepted', () => {
    // As Qwen2.5-0.5B-Instruct ships: a window size with the window switched off.
    expect(() => parseLlamaConfig({
      ...sizes, model_type: 'qwen2', sliding_window: 32768, use_sliding_window: false, max_window_layers: 21,
      attention_dropout: 0.0, torch_dtype: 'bfloat16', transformers_version: '4.43.1', use_cache: true, rope_theta: 1000000,
    }, 'c.json')).not.toThrow();
    // transformers 5's own qwen3 and mistral files (layer_types of full attention, sliding_window null, dtype).
    for (const name of ['qwen3', 'mistral_window', 'qwen3_seqcls']) expect(() => parseLlamaConfig(fixtureConfig(name), name)).not.toThrow();
    // A llama config carrying sliding_window (transformers' Llama does not read it).
    expect(() => parseLlamaConfig({ ...sizes, model_type: 'llama', sliding_window: 4 }, 'c.json')).not.toThrow();
  });

  it('tensor names per family: qwen3 q/k norms, qwen2 q/k/v biases without o, no biases for mistral whatever attention_bias says', () => {
    const names = (extra: Record<string, unknown>) => [...llamaParamShapes(parseLlamaConfig({ ...sizes, ...extra }, 'c.json'), { lmHead: true, score: false }).keys()]
      .filter((n) => n.startsWith('model.layers.0.self_attn.'));
    const attn = (xs: string[]) => xs.map((x) => `model.layers.0.self_attn.${x}`);
    expect(names({ model_type: 'qwen3' })).toEqual(attn(['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight', 'q_norm.weight', 'k_norm.weight']));
    expect(names({ model_type: 'qwen2' })).toEqual(attn(['q_proj.weight', 'q_proj.bias', 'k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias', 'o_proj.weight']));
    expect(names({ model_type: 'mistral', attention_bias: true, mlp_bias: true })).toEqual(attn(['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight']));
  });

  it('rlhf env names the family and the RoPE variant', () => {
    const lines = (name: string) => describeModel(parseLlamaConfig(fixtureConfig(name), name)).lines.join('\n');
    expect(lines('qwen3')).toContain('family: qwen3 (Qwen3ForCausalLM), RoPE default (θ 1000000), q/k RMSNorm per head');
    expect(lines('mistral_window')).toContain('family: mistral (MistralForCausalLM), RoPE default (θ 10000), sliding window 5');
    expect(lines('llama_llama3')).toContain('family: llama (LlamaForCausalLM), RoPE llama3 (θ 500000, factor 8)');
  });
});

describe('a deliberately wrong variant fails transformers reference', () => {
  let dir: string;
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
    dir = mkdtempSync(join(tmpdir(), 'families-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('mistral with its sliding window ignored (12 positions, window 5) misses the logits', () => {
    const ref = transformers5Logits('mistral_window');
    const wrong = join(dir, 'nowindow');
    cpSync(join(FIX, 'mistral_window'), wrong, { recursive: true });
    writeFileSync(join(wrong, 'config.json'), JSON.stringify({ ...fixtureConfig('mistral_window'), sliding_window: null }));
    const maxDiff = (folder: string) => maxLogitDiff(folder, ref);
    expect(maxDiff(join(FIX, 'mistral_window'))).toBeLessThan(1e-4);
    expect(maxDiff(wrong)).toBeGreaterThan(1e-2);
  });
});

describe('save, LoRA and merge-lora per family', () => {
  let dir: string;
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
    dir = mkdtempSync(join(tmpdir(), 'families-save-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const ids = [[5, 9, 13, 2, 7, 31, 44, 3, 12, 60, 8]];
  const logitsOf = (model: ReturnType<typeof loadHfModel>) =>
    tf.tidy(() => model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync() as Float32Array);
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

  it.each(['qwen2', 'qwen3', 'mistral_window', 'llama_llama3'])('%s: saved folder keeps the family keys and loads to the same logits; a merged all-linear adapter equals the adapter', (name) => {
    const model = loadHfModel(join(FIX, name));
    const saved = join(dir, `${name}-saved`);
    const adapter = join(dir, `${name}-lora`);
    const merged = join(dir, `${name}-merged`);
    try {
      const base = logitsOf(model);
      saveHfModel(model, saved);
      const cfg = JSON.parse(readFileSync(join(saved, 'config.json'), 'utf8'));
      const original = fixtureConfig(name);
      for (const key of ['model_type', 'architectures', 'sliding_window', 'rope_parameters', 'use_sliding_window', 'layer_types']) expect(cfg[key]).toEqual(original[key]);
      expect(cfg.head_dim).toBe(original.head_dim ?? (original.hidden_size as number) / (original.num_attention_heads as number));
      const again = loadHfModel(saved);
      expect(maxDiff(logitsOf(again), base)).toBe(0);
      again.dispose();

      // LoRA on every linear layer with non-zero B (PEFT's zero init would make the merge trivially equal).
      const adapters = injectLora(model, { targetModules: ALL_LINEAR, r: 2, alpha: 4, rng: new Rng(3) });
      const rng = new Rng(4);
      for (const a of adapters.values()) tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.2), a.B.shape)));
      const withAdapter = logitsOf(model);
      expect(maxDiff(withAdapter, base)).toBeGreaterThan(1e-3);
      saveAdapter(model, adapter, { baseModelNameOrPath: join(FIX, name) });
      mergeAdapterFolder(join(FIX, name), adapter, merged);
      const m = loadHfModel(merged);
      expect(maxDiff(logitsOf(m), withAdapter)).toBeLessThan(1e-4);
      m.dispose();
    } finally {
      model.dispose();
    }
  });
});
