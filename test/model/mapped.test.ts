/**
 * Frozen float32 weights off the heap, mapped from the safetensors file (src/model/io/mapped.ts,
 * `loadHfModel(dir, { frozenFloat32: true })`, src/model/frozen.ts FrozenFloat32Weight): products and
 * gradients equal the variable path; a mapped load holds the file's values bit for bit and equals a
 * read load; it generates the heap-loaded model's greedy tokens; dispose unmaps; a misaligned file
 * or `mapFiles: false` falls back to reading.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import * as tf from '@tensorflow/tfjs-core';
import { activeBlas } from '../../src/engine/blas/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { generate } from '../../src/generation/generate.js';
import { parseLlamaConfig } from '../../src/model/config.js';
import { FrozenFloat32Weight, FrozenWeight, frozenMatMulT, frozenMatMulTConcat } from '../../src/model/frozen.js';
import { isFreezable, loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { canMapFiles, MappedFile } from '../../src/model/io/mapped.js';
import { readSafetensorsHeader } from '../../src/model/io/safetensors.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { injectLora, trainableVariables } from '../../src/lora/inject.js';
import { randomValues } from '../helpers/engine.js';

const sizes = { vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 };
// qwen2: q/k/v biases (the fused q|k|v bias path) and tied embeddings (the LM head is the frozen embedding).
const tied = parseLlamaConfig({ ...sizes, model_type: 'qwen2', tie_word_embeddings: true }, 'tied.json');
const untied = parseLlamaConfig({ ...sizes, model_type: 'llama', tie_word_embeddings: false }, 'untied.json');
const PROMPTS = [[3, 9, 27, 1, 44], [7, 7, 12, 30, 0]];

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** A random-weight model folder (biases random too). */
function writeModel(config: typeof tied, seed: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'mapped-'));
  const m = initLlama(config, new Rng(seed));
  const rng = new Rng(seed + 1);
  for (const [name, v] of m.params) if (name.endsWith('.bias')) v.assign(tf.tensor(rng.fillNormal(new Float32Array(v.size), 0.5), v.shape));
  saveHfModel(m, dir);
  m.dispose();
  return dir;
}

/** The same folder with its data section moved 2 bytes (header padded with 2 more spaces): no tensor is 4-byte aligned. */
function misalignedCopy(dir: string): string {
  const out = mkdtempSync(join(tmpdir(), 'mapped-misaligned-'));
  for (const f of ['config.json', 'generation_config.json']) writeFileSync(join(out, f), readFileSync(join(dir, f)));
  const bytes = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(n + 2));
  writeFileSync(join(out, 'model.safetensors'), Buffer.concat([len, bytes.subarray(8, 8 + n), Buffer.from('  '), bytes.subarray(8 + n)]));
  return out;
}

function frozenValues(m: LlamaModel): Map<string, Float32Array> {
  return new Map([...m.frozen].map(([name, w]) => [name, (w as FrozenFloat32Weight).values]));
}

const mappable = canMapFiles();

describe.each(['wasm', 'cpu'] as const)('frozen float32 weights (%s)', (backend) => {
  const dirs: string[] = [];
  beforeAll(async () => {
    await initEngine({ backend });
    dirs.push(writeModel(tied, 3), writeModel(untied, 4));
  });
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test('products x·Wᵀ, x·W, side-by-side q|k|v and the gradient dy·W equal the variable path; no tensor leaks', () => {
    const [out, inn] = [40, 24];
    const wVals = randomValues(1, [out * inn]);
    const w = new FrozenFloat32Weight(wVals, [out, inn]);
    const v = tf.variable(tf.tensor2d(wVals, [out, inn]), false);
    const x = tf.tensor3d(randomValues(2, [2, 5, inn]), [2, 5, inn]);
    const dy = tf.tensor3d(randomValues(3, [2, 5, out]), [2, 5, out]);
    const before = tf.memory().numTensors;
    const run = (f: (p: tf.Tensor) => tf.Tensor) => {
      const { value, grads } = tf.valueAndGrads((p: tf.Tensor) => tf.sum(tf.mul(f(p), dy)))([x]);
      const y = tf.tidy(() => f(x));
      const res = [y.dataSync() as Float32Array, grads[0]!.dataSync() as Float32Array];
      tf.dispose([y, value, ...grads]);
      return res.map((a) => Float32Array.from(a));
    };
    const [frozenOut, frozenDx] = run((p) => frozenMatMulT(p, w));
    const [varOut, varDx] = run((p) => tf.matMul(p, v, false, true));
    // The same GEMM call on wasm (by address instead of a heap view) and the same kernel on cpu: bit for bit.
    expect(bitsEqual(frozenOut!, varOut!)).toBe(true);
    expect(bitsEqual(frozenDx!, varDx!)).toBe(true);
    const plain = tf.tidy(() => w.matMulWith(tf.reshape(dy, [10, out]), false).dataSync() as Float32Array);
    expect(bitsEqual(plain, tf.tidy(() => tf.matMul(tf.reshape(dy, [10, out]), v).dataSync() as Float32Array))).toBe(true);
    // q|k|v side by side: each block of columns is its own product.
    const parts = [w, new FrozenFloat32Weight(randomValues(4, [8 * inn]), [8, inn]), new FrozenFloat32Weight(randomValues(5, [16 * inn]), [16, inn])];
    const fused = tf.tidy(() => frozenMatMulTConcat(x, parts).dataSync() as Float32Array);
    const separate = tf.tidy(() => tf.concat(parts.map((p) => p.matMulWith(x, true)), -1).dataSync() as Float32Array);
    expect(bitsEqual(fused, separate)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([v, x, dy]);
  });

  test('gatherRows and materialize give the values; a released weight throws', () => {
    const vals = randomValues(6, [5 * 3]);
    const w = new FrozenFloat32Weight(vals, [5, 3]);
    expect(bitsEqual(tf.tidy(() => w.gatherRows([4, 0, 4]).dataSync() as Float32Array), Float32Array.from([...vals.subarray(12, 15), ...vals.subarray(0, 3), ...vals.subarray(12, 15)]))).toBe(true);
    expect(bitsEqual(tf.tidy(() => w.materialize().dataSync() as Float32Array), vals)).toBe(true);
    expect(() => w.gatherRows([5])).toThrow('id 5 outside [0, 5)');
    w.release();
    expect(() => w.materialize()).toThrow('used after release');
  });

  test.each([0, 1])('a mapped load holds the file bit for bit, equals a read load, keeps only norms and biases on the heap (model %i)', (which) => {
    const dir = dirs[which]!;
    const heap = loadHfModel(dir);
    const before = tf.memory().numBytes;
    const mapped = loadHfModel(dir, { frozenFloat32: true });
    const heapBytes = tf.memory().numBytes - before;
    const read = loadHfModel(dir, { frozenFloat32: true, mapFiles: false });
    const expectedFrozen = [...heap.params.keys()].filter(isFreezable);
    expect([...mapped.frozen.keys()].sort()).toEqual(expectedFrozen.sort());
    expect([...mapped.params.keys()].sort()).toEqual([...heap.params.keys()].filter((n) => !isFreezable(n)).sort());
    expect(heapBytes).toBe(4 * [...mapped.params.values()].reduce((n, v) => n + v.size, 0));
    expect(mapped.numParameters()).toBe(heap.numParameters());
    const a = frozenValues(mapped);
    const b = frozenValues(read);
    for (const name of expectedFrozen) {
      expect(bitsEqual(a.get(name)!, heap.params.get(name)!.dataSync() as Float32Array)).toBe(true);
      expect(bitsEqual(a.get(name)!, b.get(name)!)).toBe(true);
    }
    if (mappable) {
      // A view of the file itself: the values sit at the header's offsets.
      const header = readSafetensorsHeader(join(dir, 'model.safetensors'));
      const e = header.entries.find((x) => x.name === expectedFrozen[0])!;
      const fromFile = Buffer.alloc(e.end - e.begin);
      const fd = openSync(join(dir, 'model.safetensors'), 'r');
      readSync(fd, fromFile, 0, fromFile.length, header.dataStart + e.begin);
      closeSync(fd);
      const view = a.get(e.name)!;
      expect(view.buffer.byteLength).toBe(fromFile.length); // its own external buffer, not a JS copy
      expect(Buffer.compare(Buffer.from(view.buffer), fromFile)).toBe(0);
    }
    [heap, mapped, read].forEach((m) => m.dispose());
  });

  test.each([0, 1])('greedy generation equals the heap-loaded model (tokens, and log-probs to 1e-5); no tensor leaks (model %i)', (which) => {
    const dir = dirs[which]!;
    const heap = loadHfModel(dir);
    const mapped = loadHfModel(dir, { frozenFloat32: true });
    const opts = { temperature: 0, maxNewTokens: 6, minNewTokens: 6, stopTokenIds: [] as number[], rng: new Rng(0) };
    const before = tf.memory().numTensors;
    const want = generate(heap, PROMPTS, opts);
    mapped.copyFrozenForInference = true; // [in, out] heap copies at the first decode step
    const got = generate(mapped, PROMPTS, opts);
    expect(got.tokens).toEqual(want.tokens);
    got.logprobs.flat().forEach((lp, i) => expect(Math.abs(lp - want.logprobs.flat()[i]!)).toBeLessThan(1e-5));
    // Without heap copies (the default): q|k|v, gate|up and the LM head where they lie.
    mapped.copyFrozenForInference = false;
    const bytes = tf.memory().numBytes;
    let during = 0;
    const direct = mapped.withInferenceWeights(() => {
      during = tf.memory().numBytes - bytes;
      return generate(mapped, PROMPTS, opts);
    });
    expect(during).toBeLessThan(4 * 8 * tied.hidden_size); // biases only, no weight copies
    expect(direct.tokens).toEqual(want.tokens);
    direct.logprobs.flat().forEach((lp, i) => expect(Math.abs(lp - want.logprobs.flat()[i]!)).toBeLessThan(1e-5));
    expect(tf.memory().numTensors).toBe(before);
    [heap, mapped].forEach((m) => m.dispose());
  });

  test('with LoRA adapters on the frozen projections: the heap-loaded model\'s greedy tokens (adapters folded into the decode copies, or applied beside the mapped weights)', () => {
    const withAdapters = (m: LlamaModel): LlamaModel => {
      tf.tidy(() => void injectLora(m, { targetModules: 'all-linear', r: 2, alpha: 4, dropout: 0, rng: new Rng(7) }));
      const init = new Rng(8);
      for (const [name, v] of trainableVariables(m)) if (name.includes('lora_B')) v.assign(tf.tensor(init.fillNormal(new Float32Array(v.size), 0.3), v.shape));
      return m;
    };
    const heap = withAdapters(loadHfModel(dirs[1]!));
    const mapped = withAdapters(loadHfModel(dirs[1]!, { frozenFloat32: true }));
    const opts = { temperature: 0, maxNewTokens: 6, minNewTokens: 6, stopTokenIds: [] as number[], rng: new Rng(0) };
    const want = generate(heap, PROMPTS, opts);
    const plain = loadHfModel(dirs[1]!);
    const base = generate(plain, PROMPTS, opts);
    plain.dispose();
    expect(want.tokens).not.toEqual(base.tokens); // the adapters matter
    mapped.copyFrozenForInference = true;
    expect(generate(mapped, PROMPTS, opts).tokens).toEqual(want.tokens);
    mapped.copyFrozenForInference = false;
    expect(generate(mapped, PROMPTS, opts).tokens).toEqual(want.tokens);
    [heap, mapped].forEach((m) => m.dispose());
  });

  test('dispose releases every weight and unmaps the file; a weight of a disposed model throws', () => {
    const unmap = jest.spyOn(MappedFile.prototype, 'unmap');
    try {
      const mapped = loadHfModel(dirs[0]!, { frozenFloat32: true });
      const w = mapped.frozen.get('model.embed_tokens.weight') as FrozenFloat32Weight;
      expect(w.values.length).toBe(tied.vocab_size * tied.hidden_size);
      expect(unmap).not.toHaveBeenCalled();
      mapped.dispose();
      expect(unmap).toHaveBeenCalledTimes(mappable ? 1 : 0);
      if (mappable) expect((unmap.mock.contexts[0] as MappedFile).mapped).toBe(false);
      expect(() => w.values).toThrow('used after release');
      expect(() => tf.tidy(() => mapped.forward({ inputIds: tf.tensor2d(PROMPTS, undefined, 'int32') }).logits)).toThrow('used after release');
    } finally {
      unmap.mockRestore();
    }
  });

  test('a BF16 file\'s frozen weights are views of its bits (bfloat16 or frozenFloat32 load), equal to reading them; dispose unmaps', () => {
    const bf16Dir = mkdtempSync(join(tmpdir(), 'mapped-bf16-'));
    const unmap = jest.spyOn(MappedFile.prototype, 'unmap');
    try {
      const src = loadHfModel(dirs[1]!);
      saveHfModel(src, bf16Dir, { dtype: 'BF16' });
      src.dispose();
      const read = loadHfModel(bf16Dir, { frozenDtype: 'bfloat16', mapFiles: false });
      const logits = (m: LlamaModel) => tf.tidy(() => m.forward({ inputIds: tf.tensor2d(PROMPTS, undefined, 'int32') }).logits.dataSync() as Float32Array);
      const want = logits(read);
      for (const opts of [{ frozenDtype: 'bfloat16' as const }, { frozenFloat32: true }]) {
        const mapped = loadHfModel(bf16Dir, opts);
        expect([...mapped.frozen.keys()].sort()).toEqual([...read.frozen.keys()].sort());
        for (const [name, w] of mapped.frozen) {
          const bits = (w as FrozenWeight).bits;
          expect(bits).toEqual((read.frozen.get(name) as FrozenWeight).bits);
          if (mappable) expect(bits.buffer.byteLength).toBe(bits.byteLength); // a view of its own external buffer
        }
        expect(bitsEqual(logits(mapped), want)).toBe(true);
        const calls = unmap.mock.calls.length;
        mapped.dispose();
        expect(unmap.mock.calls.length - calls).toBe(mappable ? 1 : 0);
        expect(() => (mapped.frozen.get('model.embed_tokens.weight') as FrozenWeight).bits).toThrow('used after release');
      }
      read.dispose();
    } finally {
      unmap.mockRestore();
      rmSync(bf16Dir, { recursive: true, force: true });
    }
  });

  test('a file whose tensors are not 4-byte aligned is read instead (same values), and unmapped at once', () => {
    const odd = misalignedCopy(dirs[1]!);
    const unmap = jest.spyOn(MappedFile.prototype, 'unmap');
    try {
      const header = readSafetensorsHeader(join(odd, 'model.safetensors'));
      expect(header.dataStart % 4).toBe(2);
      const fallback = loadHfModel(odd, { frozenFloat32: true });
      expect(unmap).toHaveBeenCalledTimes(mappable ? 1 : 0); // mapped, nothing viewable, unmapped
      const heap = loadHfModel(dirs[1]!);
      for (const [name, values] of frozenValues(fallback)) {
        expect(values.buffer.byteLength).toBe(values.byteLength); // a JS copy of its own
        expect(bitsEqual(values, heap.params.get(name)!.dataSync() as Float32Array)).toBe(true);
      }
      [fallback, heap].forEach((m) => m.dispose());
    } finally {
      unmap.mockRestore();
      rmSync(odd, { recursive: true, force: true });
    }
  });

  if (backend === 'wasm') {
    test('on wasm with a GEMM, products read the weight in place (no transient tensor of it)', () => {
      if (activeBlas() === null) return; // no native GEMM here: the transient-tensor path is what runs
      const mapped = loadHfModel(dirs[1]!, { frozenFloat32: true });
      const w = mapped.frozen.get('model.layers.0.mlp.up_proj.weight')!;
      const x = tf.ones([3, w.shape[1]!]);
      const before = tf.memory().numBytes;
      let peak = 0;
      const y = tf.tidy(() => {
        const out = w.matMulWith(x, true);
        peak = tf.memory().numBytes - before;
        return out;
      });
      expect(peak).toBe(4 * 3 * w.shape[0]!); // only the output
      tf.dispose([x, y]);
      mapped.dispose();
    });
  }
});

describe('MappedFile', () => {
  test('maps a file, views float32 values in place, refuses misaligned or out-of-range views, unmaps with its last view', () => {
    if (!canMapFiles()) return; // nothing to map with here (the loader reads instead; covered above)
    const dir = mkdtempSync(join(tmpdir(), 'mapped-file-'));
    try {
      const path = join(dir, 'f.bin');
      const vals = Float32Array.from([1.5, -2, 3.25, 7]);
      writeFileSync(path, Buffer.concat([Buffer.from([9, 9, 9, 9]), Buffer.from(vals.buffer)]));
      const f = MappedFile.open(path)!;
      expect(f.length).toBe(20);
      expect(f.canViewFloat32(2, 1)).toBe(false);
      expect(() => f.float32View(2, 1)).toThrow('misaligned or outside the file');
      expect(f.canViewFloat32(4, 5)).toBe(false);
      const a = f.float32View(4, 4);
      const b = f.float32View(8, 2);
      expect(Array.from(a.values)).toEqual([1.5, -2, 3.25, 7]);
      expect(Array.from(b.values)).toEqual([-2, 3.25]);
      a.values[0] = 100; // private: the file does not change
      expect(readFileSync(path).readFloatLE(4)).toBe(1.5);
      a.release();
      a.release(); // once only
      expect(f.mapped).toBe(true);
      b.release();
      expect(f.mapped).toBe(false);
      expect(() => f.float32View(4, 1)).toThrow('unmapped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
