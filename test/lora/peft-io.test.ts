import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters, loraSettings, unloadLora } from '../../src/lora/inject.js';
import { adapterStateDict, loadAdapter, readAdapterConfig, saveAdapter } from '../../src/lora/peft-io.js';
import { llamaConfig } from '../../src/model/config.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/model/io/safetensors.js';
import { attachScoreHead, initLlama, type LlamaModel } from '../../src/model/llama.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'peft-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const config = llamaConfig({ vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });

function trained(score = false): LlamaModel {
  const model = initLlama(config, new Rng(1));
  if (score) attachScoreHead(model, new Rng(4));
  injectLora(model, {
    targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    r: 4,
    alpha: 16,
    dropout: 0.05,
    useRslora: true,
    modulesToSave: score ? ['score'] : [],
    rng: new Rng(2),
  });
  const rng = new Rng(3);
  for (const a of loraAdapters(model).values()) {
    tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.1), a.B.shape)));
  }
  return model;
}

describe('PEFT adapter folders', () => {
  test('PEFT key names, shapes and adapter_config.json fields', () => {
    const model = trained(true);
    saveAdapter(model, dir, { baseModelNameOrPath: 'runs/world/pretrain/final', taskType: 'SEQ_CLS' });
    const header = readSafetensorsHeader(join(dir, 'adapter_model.safetensors'));
    const names = header.entries.map((e) => e.name);
    expect(names).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(names).toContain('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight');
    expect(names).toContain('base_model.model.score.weight');
    expect(names).toHaveLength(2 * 4 * 2 + 1);
    const kA = header.entries.find((e) => e.name === 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight')!;
    const kB = header.entries.find((e) => e.name === 'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight')!;
    expect(kA.shape).toEqual([4, 16]); // [r, in]
    expect(kB.shape).toEqual([8, 4]); // [out = 2 kv heads × 4, r]
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      task_type: 'SEQ_CLS',
      r: 4,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['k_proj', 'o_proj', 'q_proj', 'v_proj'],
      modules_to_save: ['score'],
      base_model_name_or_path: 'runs/world/pretrain/final',
      bias: 'none',
      use_rslora: true,
      fan_in_fan_out: false,
      inference_mode: true,
    });
    expect(Object.keys(cfg)).toEqual([...Object.keys(cfg)].sort());
    unloadLora(model, { merge: false });
    model.dispose();
  });

  test('save → load is bit-exact (weights, settings, logits)', () => {
    const model = trained(true);
    saveAdapter(model, dir);
    const saved = adapterStateDict(model);
    const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
    const before = model.forward({ inputIds: ids }).logits.dataSync();

    const fresh = initLlama(config, new Rng(1));
    attachScoreHead(fresh, new Rng(99)); // a different head: the adapter's copy must replace it
    loadAdapter(fresh, dir);
    expect(loraSettings(fresh)).toEqual({ ...loraSettings(model), targetModules: ['k_proj', 'o_proj', 'q_proj', 'v_proj'] });
    const loaded = adapterStateDict(fresh);
    expect([...loaded.keys()]).toEqual([...saved.keys()]);
    for (const [k, t] of saved) expect(loaded.get(k)!.data).toEqual(t.data);
    expect(fresh.forward({ inputIds: ids }).logits.dataSync()).toEqual(before);
    for (const m of [model, fresh]) {
      unloadLora(m, { merge: false });
      m.dispose();
    }
  });

  test('an adapter that does not fit fails with one message naming every problem, leaving the model bare', () => {
    const model = trained();
    saveAdapter(model, dir);
    const path = join(dir, 'adapter_model.safetensors');
    const { tensors } = readSafetensors(path);
    tensors.delete('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    tensors.set('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight', { shape: [3, 4], data: new Float32Array(12) });
    tensors.set('base_model.model.model.layers.0.mlp.up_proj.lora_A.weight', { shape: [4, 16], data: new Float32Array(64) });
    writeSafetensors(path, tensors);
    const fresh = initLlama(config, new Rng(1));
    let message = '';
    try {
      loadAdapter(fresh, dir);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('adapter_model.safetensors');
    expect(message).toContain('missing base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(message).toContain('v_proj.lora_B.weight has shape [3,4], expected [8,4]');
    expect(message).toContain('unexpected base_model.model.model.layers.0.mlp.up_proj.lora_A.weight');
    expect(fresh.adapters.size).toBe(0);
    unloadLora(model, { merge: false });
    model.dispose();
    fresh.dispose();
  });

  test('adapter_config.json problems are user errors naming the file and keys', () => {
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 0, lora_alpha: 8, target_modules: ['q_proj'], use_dora: true }));
    expect(() => readAdapterConfig(dir)).toThrow(/adapter_config\.json: "r" must be a positive integer.*"use_dora" must be false/);
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: 'all-linear' }));
    expect(readAdapterConfig(dir)).toMatchObject({ r: 8, lora_dropout: 0, task_type: 'CAUSAL_LM', modules_to_save: null, use_rslora: false });
  });
});
