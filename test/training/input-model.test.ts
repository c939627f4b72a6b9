import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters } from '../../src/lora/inject.js';
import { saveAdapter } from '../../src/lora/peft-io.js';
import { llamaConfig } from '../../src/model/config.js';
import { loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { INPUT_MODEL_DIR, prepareInputModel } from '../../src/training/input-model.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'input-model-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const config = llamaConfig({ vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
const logitsOf = (m: LlamaModel) => tf.tidy(() => m.forward({ inputIds: tf.tensor2d([[4, 8, 15, 16, 23]], undefined, 'int32') }).logits.dataSync());

describe('prepareInputModel', () => {
  test('model.path as it is without an adapter; with one, base + adapter merged into <output_dir>/input_model with the tokenizer files', () => {
    const base = join(root, 'base'), adapter = join(root, 'adapter'), out = join(root, 'run');
    const model = initLlama(config, new Rng(1));
    saveHfModel(model, base);
    writeFileSync(join(base, 'tokenizer.json'), '{"fake": true}');
    const logs: string[] = [];
    const log = (m: string) => void logs.push(m);

    const plain = prepareInputModel({ model: { path: base, adapter: null }, tokenizer: { path: null }, output_dir: out }, { label: 'rs', log });
    expect(plain).toEqual({ modelDir: base, tokenizerDir: base });
    expect(existsSync(join(out, INPUT_MODEL_DIR))).toBe(false);

    injectLora(model, { targetModules: 'all-linear', r: 2, alpha: 4, rng: new Rng(2) });
    const rng = new Rng(3);
    for (const a of loraAdapters(model).values()) tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.2), a.B.shape)));
    saveAdapter(model, adapter, { baseModelNameOrPath: base });
    const expected = logitsOf(model);

    const merged = prepareInputModel({ model: { path: base, adapter }, tokenizer: { path: null }, output_dir: out }, { label: 'rs', log });
    expect(merged).toEqual({ modelDir: join(out, INPUT_MODEL_DIR), tokenizerDir: join(out, INPUT_MODEL_DIR) });
    expect(readFileSync(join(merged.modelDir, 'tokenizer.json'), 'utf8')).toBe('{"fake": true}');
    expect(logs).toEqual([`rs: merged adapter ${adapter} into ${merged.modelDir}`]);
    const loaded = loadHfModel(merged.modelDir);
    const got = logitsOf(loaded);
    expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - expected[i]!)))).toBeLessThan(1e-5); // base + adapter, as the adapter-carrying model computes
    loaded.dispose();
    model.dispose();

    // A given tokenizer.path stays the tokenizer folder.
    const withTokenizer = prepareInputModel({ model: { path: base, adapter }, tokenizer: { path: base }, output_dir: out }, { label: 'gatt', log });
    expect(withTokenizer.tokenizerDir).toBe(base);
  });

  test('a model.path without config.json is a user error naming the key', () => {
    expect(() => prepareInputModel({ model: { path: root, adapter: null }, tokenizer: { path: null }, output_dir: join(root, 'run') }, { label: 'rs', log: () => {} }))
      .toThrow(`model.path: ${root} has no config.json`);
  });
});
