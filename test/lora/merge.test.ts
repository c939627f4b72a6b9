import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters } from '../../src/lora/inject.js';
import { mergeAdapterFolder } from '../../src/lora/merge.js';
import { saveAdapter } from '../../src/lora/peft-io.js';
import { llamaConfig } from '../../src/model/config.js';
import { loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { run, type CliIo } from '../../src/cli/main.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'merge-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const config = llamaConfig({ vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
const logitsOf = (m: LlamaModel) => tf.tidy(() => m.forward({ inputIds: tf.tensor2d([[4, 8, 15, 16, 23]], undefined, 'int32') }).logits.dataSync());

describe('merge-lora', () => {
  test('merged folder reproduces base + adapter within 1e-5 and carries the tokenizer files', () => {
    const base = join(root, 'base'), adapter = join(root, 'adapter'), out = join(root, 'merged');
    const model = initLlama(config, new Rng(1));
    saveHfModel(model, base);
    writeFileSync(join(base, 'tokenizer.json'), '{"fake": true}');
    injectLora(model, { targetModules: 'all-linear', r: 2, alpha: 4, rng: new Rng(2) });
    const rng = new Rng(3);
    for (const a of loraAdapters(model).values()) tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.2), a.B.shape)));
    saveAdapter(model, adapter, { baseModelNameOrPath: base });
    const expected = logitsOf(model);

    const { mergedModules } = mergeAdapterFolder(base, adapter, out);
    expect(mergedModules).toBe(14);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe('{"fake": true}');
    expect(existsSync(join(out, 'adapter_config.json'))).toBe(false);
    const merged = loadHfModel(out);
    const got = logitsOf(merged);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
    const baseModel = loadHfModel(base);
    const baseLogits = logitsOf(baseModel);
    expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - baseLogits[i]!)))).toBeGreaterThan(1e-3); // the merge changed the model
    baseModel.dispose();
    expect(() => mergeAdapterFolder(base, adapter, base)).toThrow(/is the base model folder/);
    merged.dispose();
    model.dispose();
  });

  test('rlhf merge-lora: writes the folder; a missing adapter is a user error (exit 2)', async () => {
    const base = join(root, 'base'), adapter = join(root, 'adapter'), out = join(root, 'merged');
    const model = initLlama(config, new Rng(1));
    saveHfModel(model, base);
    injectLora(model, { targetModules: ['q_proj'], r: 2, alpha: 2, rng: new Rng(2) });
    saveAdapter(model, adapter);
    model.dispose();
    const errors: string[] = [];
    const io: CliIo = { out: () => {}, err: (t) => void errors.push(t), debug: false };
    const printed: string[] = [];
    const realLog = console.log;
    console.log = (...args: unknown[]) => void printed.push(args.join(' '));
    try {
      expect(await run(['merge-lora', '--model', base, '--adapter', adapter, '--out', out, '--backend', 'cpu'], io)).toBe(0);
      expect(printed.join('\n')).toMatch(/merged 2 LoRA modules/);
      expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
      expect(await run(['merge-lora', '--model', base, '--adapter', join(root, 'nope'), '--out', out, '--backend', 'cpu'], io)).toBe(2);
      expect(errors.join('\n')).toMatch(/nope\/adapter_config\.json: not found/);
    } finally {
      console.log = realLog;
    }
  });
});
