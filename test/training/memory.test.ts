/**
 * Fail before, not during (src/training/memory.ts, memory-check.ts): the estimate's parts against
 * hand-computed counts, the verdict against the wasm cap and the RAM, a run that cannot fit refused
 * at the start of the SFT stage with the estimate and the keys to change (before any weight is
 * read: the model folder has only config.json), and a wasm abort reported as a memory error.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportError } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { isUserError } from '../../src/errors.js';
import { injectLora } from '../../src/lora/inject.js';
import { numLoraParameters } from '../../src/lora/peft-io.js';
import { configToJson, llamaConfig } from '../../src/model/config.js';
import { initLlama } from '../../src/model/llama.js';
import { packagePath } from '../../src/paths.js';
import { sftConfigSchema } from '../../src/sft/config.js';
import { runSft } from '../../src/sft/recipe.js';
import { estimatePeakMemory, loraParameterCount, loraShortModules, WASM_HEAP_MAX_BYTES } from '../../src/training/memory.js';
import { checkMemoryFits, checkTrainingMemory, judgeFit, trainingKnobs } from '../../src/training/memory-check.js';

const GiB = 2 ** 30;
// TinyLlama-1.1B's shape: 1,100,048,384 weights (HF's model card count).
const tinyllama = llamaConfig({
  vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32,
  num_key_value_heads: 4, tie_word_embeddings: false, rms_norm_eps: 1e-5,
});

describe('estimatePeakMemory', () => {
  test('weights: 4 bytes per weight of the config (TinyLlama-1.1B: 1,100,048,384 weights)', () => {
    const e = estimatePeakMemory({ config: tinyllama, batchSize: 1, seqLen: 16, trained: { kind: 'none' } });
    expect(e.items.find((i) => i.what.startsWith('weights'))!.bytes).toBe(4 * 1_100_048_384);
  });

  test('inference with mapped float32 weights (rlhf generate): the weights off the heap, counted once', () => {
    const input = { config: tinyllama, batchSize: 1, seqLen: 16, trained: { kind: 'none' } as const };
    const heap = estimatePeakMemory(input);
    const mapped = estimatePeakMemory({ ...input, frozenFloat32: true });
    const weights = 4 * 1_100_048_384;
    expect(mapped.items.find((i) => i.what.startsWith('weights'))).toMatchObject({ bytes: weights, where: 'host' });
    expect(heap.heapBytes - mapped.heapBytes).toBeGreaterThanOrEqual(weights); // (times the heap slack)
    expect(mapped.hostBytes - heap.hostBytes).toBe(weights);
    expect(mapped.totalBytes).toBeLessThanOrEqual(heap.totalBytes);
    // Training loads keep every weight on the heap whatever the flag says.
    const lora = { kind: 'lora', rank: 8, modules: ['q_proj'], dropout: 0 } as const;
    expect(estimatePeakMemory({ ...input, trained: lora, frozenFloat32: true })).toEqual(estimatePeakMemory({ ...input, trained: lora }));
  });

  test('LoRA parameter count equals what injectLora adds', async () => {
    await initEngine({ backend: 'cpu' });
    const cfg = llamaConfig({ vocab_size: 40, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 3, num_attention_heads: 6, num_key_value_heads: 2 });
    for (const targets of ['all-linear', ['q_proj', 'v_proj'], '.*\\.mlp\\..*'] as const) {
      const model = initLlama(cfg, new Rng(0));
      injectLora(model, { targetModules: targets as string | string[], r: 4, alpha: 8, rng: new Rng(1) });
      expect(loraParameterCount(cfg, 4, loraShortModules(cfg, targets as string | string[]))).toBe(numLoraParameters(model));
      model.dispose();
    }
  });

  test('full fine-tuning adds gradients, their sum and two AdamW moments: 16 bytes a weight', () => {
    const base = { config: tinyllama, batchSize: 1, seqLen: 16 } as const;
    const full = estimatePeakMemory({ ...base, trained: { kind: 'full' } });
    expect(full.items.find((i) => i.what.startsWith('gradients'))!.bytes).toBe(16 * 1_100_048_384);
  });

  test('checkpointing keeps one [tokens, hidden] per layer instead of every activation; chunked logits hold [chunk, vocab]', () => {
    const lora = { kind: 'lora', rank: 16, modules: loraShortModules(tinyllama, 'all-linear'), dropout: 0.05 } as const;
    const plain = estimatePeakMemory({ config: tinyllama, batchSize: 1, seqLen: 512, trained: lora });
    const ckpt = estimatePeakMemory({ config: tinyllama, batchSize: 1, seqLen: 512, trained: lora, gradientCheckpointing: true, lossChunkRows: 262 });
    expect(ckpt.items.find((i) => i.what.startsWith('layer inputs'))!.bytes).toBe(22 * 512 * 2048 * 4);
    expect(ckpt.items.find((i) => i.what.startsWith('logits'))!.bytes).toBe(3 * 262 * 32000 * 4);
    expect(plain.items.find((i) => i.what.startsWith('logits'))!.bytes).toBe(4 * 512 * 32000 * 4);
    expect(ckpt.heapBytes).toBeLessThan(plain.heapBytes);
  });
});

describe('judgeFit / checkMemoryFits', () => {
  const lora = { kind: 'lora', rank: 16, modules: loraShortModules(tinyllama, 'all-linear'), dropout: 0.05 } as const;
  const estimate = estimatePeakMemory({ config: tinyllama, batchSize: 4, seqLen: 256, trained: lora });

  test('float32 TinyLlama weights alone exceed the wasm heap cap; off wasm only the RAM counts', () => {
    expect(judgeFit(estimate, { heapBytes: WASM_HEAP_MAX_BYTES, ramBytes: 64 * GiB }).fits).toBe(false);
    expect(judgeFit(estimate, { heapBytes: null, ramBytes: 64 * GiB }).fits).toBe(true);
    expect(judgeFit(estimate, { heapBytes: null, ramBytes: 2 * GiB }).fits).toBe(false);
  });

  test('the refusal names the estimate, the limit and the keys to change', () => {
    const knobs = trainingKnobs({ batchSize: 4, maxLengthKey: 'data.max_length', maxLength: 256, gradientCheckpointing: false, frozenDtype: 'float32' });
    let err: unknown;
    try {
      checkMemoryFits('sft', estimate, { heapBytes: WASM_HEAP_MAX_BYTES, ramBytes: 64 * GiB }, knobs, () => undefined);
    } catch (e) {
      err = e;
    }
    expect(isUserError(err)).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toMatch(/will not fit/);
    expect(msg).toMatch(/caps at 4\.0 GiB/);
    expect(msg).toMatch(/estimated peak: \d+\.\d GiB/);
    for (const key of ['train.batch_size', 'data.max_length', 'train.gradient_checkpointing: true', 'model.frozen_dtype: bfloat16']) expect(msg).toContain(key);
  });
});

describe('refused at start', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'memory-refuse-'));
    // A TinyLlama-shaped folder with a config and no weights: the refusal must come before loading them.
    mkdirSync(join(dir, 'model'));
    writeFileSync(join(dir, 'model', 'config.json'), JSON.stringify(configToJson(tinyllama)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([['false', true], ['auto', false]] as const)(
    'SFT of a config that cannot fit stops before loading, with the estimate (gradient_checkpointing %s)', async (ckpt, suggestsCheckpointing) => {
      const resolved = loadConfig(
        packagePath('configs', 'sft', 'tiny_lora.yaml'),
        [`model.path=${join(dir, 'model')}`, 'engine.backend=wasm', 'lora.enabled=false', 'sft.save_merged=false', `output_dir=${join(dir, 'out')}`,
          `train.gradient_checkpointing=${ckpt}`],
        { stage: 'sft', schema: sftConfigSchema },
      );
      const logs: string[] = [];
      const err = await runSft(resolved, { progress: false, log: (m) => void logs.push(m) }).catch((e: unknown) => e);
      expect(isUserError(err)).toBe(true);
      expect((err as Error).message).toMatch(/^sft: this run will not fit in memory: its tensors need about \d+\.\d GiB on the wasm heap/);
      // auto tried checkpointing already: the refusal is the estimate with it, and suggests the other keys.
      expect((err as Error).message.includes('train.gradient_checkpointing: true (now false)')).toBe(suggestsCheckpointing);
      expect((err as Error).message).toContain('a lower train.batch_size');
      expect(logs.join('\n')).toMatch(/sft: estimated peak memory \d+\.\d GiB/);
    });
});

describe('train.gradient_checkpointing: auto', () => {
  // The Qwen2.5-0.5B shape (as a Llama): LoRA at 4 × 256 needs ~7 GiB of heap without checkpointing, ~3 GiB with.
  const qwen = llamaConfig({
    vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14,
    num_key_value_heads: 2, tie_word_embeddings: true, rms_norm_eps: 1e-6,
  });
  const lora = { r: 16, target_modules: 'all-linear', dropout: 0.05 };
  const shape = (batchSize: number, gradientCheckpointing: boolean | 'auto') => ({
    config: qwen, batchSize, maxLengthKey: 'data.max_length', maxLength: 256, lora, gradientCheckpointing, lossChunkRows: 128,
  });

  test('turns checkpointing on only when the run would not fit without it, and says so', () => {
    const logs: string[] = [];
    expect(checkTrainingMemory('sft', 'wasm', shape(4, 'auto'), (m) => void logs.push(m))).toBe(true);
    expect(logs[0]).toMatch(/^sft: train\.gradient_checkpointing auto → on: without it the run needs \d+\.\d GiB \(wasm heap \d+\.\d GiB\), which does not fit$/);
    expect(logs[1]).toMatch(/^sft: estimated peak memory \d+\.\d GiB \(wasm heap [0-3]\.\d GiB of 4\.0 GiB\)/);
    const quiet: string[] = [];
    expect(checkTrainingMemory('sft', 'wasm', shape(1, 'auto'), (m) => void quiet.push(m))).toBe(false);
    expect(quiet).toHaveLength(1); // the estimate only
    expect(checkTrainingMemory('sft', 'wasm', shape(1, true), () => undefined)).toBe(true);
    expect(() => checkTrainingMemory('sft', 'wasm', shape(4, false), () => undefined)).toThrow(/will not fit in memory/);
  });
});

test('a wasm abort is reported as running out of memory, with the keys to change', () => {
  const lines: string[] = [];
  const code = reportError(new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.'), { out: () => undefined, err: (t) => void lines.push(t), debug: false });
  expect(code).toBe(1);
  expect(lines[0]).toMatch(/^error: the tensor engine ran out of memory \(Aborted\(\)/);
  expect(lines[0]).toContain('train.batch_size');
});
