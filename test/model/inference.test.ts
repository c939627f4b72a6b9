/**
 * The inference fast paths of the model, each against the ordinary TF.js path, on cpu and wasm:
 * inference weights (fused q|k|v and gate|up, transposed, LoRA folded in), the JS RMSNorm and
 * RoPE-with-cache-write of decoding, and the preallocated KV cache (in-place appends, growth,
 * extending an older cache again).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { copyAxis2InPlace } from '../../src/engine/inplace.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters, mergeLora } from '../../src/lora/inject.js';
import { llamaConfig, type LlamaConfig } from '../../src/model/config.js';
import { ropeAppendJs, rmsNormJs } from '../../src/model/inference.js';
import { KVCache } from '../../src/model/kvcache.js';
import { applyRope, rmsNorm, ropeInvFreq, ropeTablesFor, rotateHalfMatrix } from '../../src/model/layers.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { randomValues, relativeError } from '../helpers/engine.js';

const GQA = llamaConfig({
  vocab_size: 40, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.3,
});
const ids = [[0, 0, 4, 9, 13, 21, 6, 2], [7, 3, 5, 1, 19, 23, 11, 30]];
const mask = [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Logits of the whole sequence [B·T·V]. */
function fullLogits(model: LlamaModel): Float32Array {
  return tf.tidy(() => model.forward({
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
  }).logits.dataSync() as Float32Array);
}

/** Feed columns [from, to) of `ids` on top of `cache`: the logits [B, to − from, V] (flattened) and the new cache. */
function feed(model: LlamaModel, from: number, to: number, cache: KVCache): { logits: Float32Array; cache: KVCache } {
  const inputIds = tf.tensor2d(ids.map((r) => r.slice(from, to)), undefined, 'int32');
  const attentionMask = tf.tensor2d(mask.map((r) => r.slice(0, to)), undefined, 'int32');
  const o = model.forward({ inputIds, attentionMask, cache });
  const logits = o.logits.dataSync() as Float32Array;
  tf.dispose([inputIds, attentionMask, o.logits, o.hidden]);
  return { logits, cache: o.cache! };
}

/**
 * Decode `ids` in the given [from, to) steps through `cache`; returns the logits of every position
 * in order [B, T, V] (flattened), and disposes every cache made on the way.
 */
function decodeLogits(model: LlamaModel, cache: KVCache, steps: readonly (readonly [number, number])[]): Float32Array {
  const v = model.config.vocab_size;
  const out = new Float32Array(2 * 8 * v);
  for (const [from, to] of steps) {
    const step = feed(model, from, to, cache);
    for (let b = 0; b < 2; b++) {
      for (let i = from; i < to; i++) {
        out.set(step.logits.subarray((b * (to - from) + i - from) * v, (b * (to - from) + i - from + 1) * v), (b * 8 + i) * v);
      }
    }
    cache.dispose();
    cache = step.cache;
    expect(cache.length).toBe(to);
  }
  cache.dispose();
  return out;
}

/** Largest |Δ| over positions that are tokens (pad positions are not compared). */
function tokenDiff(a: Float32Array, b: Float32Array, v: number): number {
  let m = 0;
  for (let r = 0; r < 2; r++) {
    for (let i = 0; i < 8; i++) {
      if (mask[r]![i]) m = Math.max(m, maxAbsDiff(a.subarray((r * 8 + i) * v, (r * 8 + i + 1) * v), b.subarray((r * 8 + i) * v, (r * 8 + i + 1) * v)));
    }
  }
  return m;
}

const STEPS = [[0, 5], [5, 6], [6, 8]] as const;

describe.each(['cpu', 'wasm'] as const)('inference paths on %s', (backend) => {
  beforeAll(async () => {
    await initEngine({ backend });
  });
  afterAll(async () => {
    await initEngine({ backend: 'cpu' });
  });

  test('rmsNormJs equals rmsNorm', () => {
    const x = tf.tensor(randomValues(1, [3, 2, 24]), [3, 2, 24]);
    const w = tf.tensor(randomValues(2, [24]), [24]);
    const ref = tf.tidy(() => rmsNorm(x, w, 1e-5).dataSync());
    const got = tf.tidy(() => rmsNormJs(x, w.dataSync() as Float32Array, 1e-5).dataSync());
    expect(relativeError(got, ref)).toBeLessThan(1e-6);
    tf.dispose([x, w]);
  });

  test('ropeAppendJs equals applyRope on the fused tables, and writes k/v into the cache at the position', () => {
    const [b, t, nh, nkv, hd] = [2, 3, 4, 2, 6];
    const width = (nh + 2 * nkv) * hd;
    const qkv = tf.tensor(randomValues(3, [b, t, width]), [b, t, width]);
    const positions = { batch: b, len: t, values: [0, 1, 2, 4, 5, 6] };
    const invFreq = ropeInvFreq(hd, 10000);
    const scale = 1 / Math.sqrt(hd);
    const ref = tf.tidy(() => {
      const tables = ropeTablesFor(positions, invFreq, [{ heads: nh, scale }, { heads: nkv }, { heads: nkv, identity: true }]);
      return applyRope(qkv, tables.cos, tables.sin, rotateHalfMatrix(hd)).arraySync() as number[][][];
    });
    const capacity = 7;
    const at = 2;
    const cache = { k: tf.zeros([b, nkv, capacity, hd]) as tf.Tensor4D, v: tf.zeros([b, nkv, capacity, hd]) as tf.Tensor4D };
    const q = ropeAppendJs(qkv, { queryHeads: nh, kvHeads: nkv, headDim: hd }, positions, invFreq, scale, cache, at);
    const qv = q.arraySync();
    const kv = cache.k.arraySync();
    const vv = cache.v.arraySync();
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < t; i++) {
        expect(maxAbsDiff(qv[r]![i]!, ref[r]![i]!.slice(0, nh * hd))).toBeLessThan(1e-6);
        for (let h = 0; h < nkv; h++) {
          expect(maxAbsDiff(kv[r]![h]![at + i]!, ref[r]![i]!.slice((nh + h) * hd, (nh + h + 1) * hd))).toBeLessThan(1e-6);
          expect(maxAbsDiff(vv[r]![h]![at + i]!, ref[r]![i]!.slice((nh + nkv + h) * hd, (nh + nkv + h + 1) * hd))).toBe(0);
        }
      }
      for (let h = 0; h < nkv; h++) { // untouched positions stay zero
        for (const p of [0, 1, 5, 6]) expect(kv[r]![h]![p]!.every((x) => x === 0)).toBe(true);
      }
    }
    tf.dispose([qkv, q, cache.k, cache.v]);
  });

  test('copyAxis2InPlace copies positions between buffers of different lengths', () => {
    const src = tf.tensor4d(Float32Array.from({ length: 2 * 2 * 3 * 2 }, (_, i) => i + 1), [2, 2, 3, 2]);
    const dst = tf.zeros([2, 2, 5, 2]) as tf.Tensor4D;
    copyAxis2InPlace(dst, 3, src, 1, 2);
    const d = dst.arraySync();
    const s = src.arraySync();
    expect(d[1]![0]![3]).toEqual(s[1]![0]![1]);
    expect(d[1]![0]![4]).toEqual(s[1]![0]![2]);
    expect(d[0]![1]![0]).toEqual([0, 0]);
    expect(() => copyAxis2InPlace(dst, 4, src, 0, 2)).toThrow(/out of range/);
    tf.dispose([src, dst]);
  });

  describe.each([
    ['GQA, untied', GQA],
    ['biases, tied embeddings', { ...GQA, attention_bias: true, mlp_bias: true, tie_word_embeddings: true }],
    ['qwen2: q/k/v biases', { ...GQA, model_type: 'qwen2' }],
    ['qwen3: per-head q/k RMSNorm, head_dim 8 ≠ 24/4, biases', { ...GQA, model_type: 'qwen3', head_dim: 8, attention_bias: true }],
    ['mistral: sliding window 3 over 8 positions', { ...GQA, model_type: 'mistral', sliding_window: 3 }],
    ['llama3 RoPE scaling', { ...GQA, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 4 } }],
  ] as [string, LlamaConfig][])('%s', (_name, config) => {
    let model: LlamaModel;
    beforeAll(() => {
      model = initLlama(config, new Rng(11));
      // Non-zero biases, so the fused bias is exercised; q/k norm weights away from 1.
      const rng = new Rng(12);
      for (const [name, v] of model.params) {
        if (name.endsWith('.bias')) tf.tidy(() => v.assign(tf.tensor(rng.fillNormal(new Float32Array(v.size), 0.3), v.shape)));
        if (/self_attn\.[qk]_norm\.weight$/.test(name)) tf.tidy(() => v.assign(tf.tensor(rng.fillNormal(new Float32Array(v.size), 0.5).map((x) => 1 + x), v.shape)));
      }
    });
    afterAll(() => model.dispose());

    test('forward under inference weights equals the plain forward', () => {
      const before = tf.memory().numTensors;
      const ref = fullLogits(model);
      const got = model.withInferenceWeights(() => fullLogits(model));
      expect(maxAbsDiff(got, ref)).toBeLessThan(1e-5);
      expect(tf.memory().numTensors).toBe(before);
    });

    test('a preallocated cache (capacity 3: grows twice) decodes what the full forward computes, with and without inference weights; so does an exact cache under them', () => {
      const before = tf.memory().numTensors;
      const ref = fullLogits(model);
      const v = model.config.vocab_size;
      expect(tokenDiff(decodeLogits(model, KVCache.preallocated(3), STEPS), ref, v)).toBeLessThan(1e-5);
      expect(tokenDiff(model.withInferenceWeights(() => decodeLogits(model, KVCache.preallocated(8), STEPS)), ref, v)).toBeLessThan(1e-5);
      expect(tokenDiff(model.withInferenceWeights(() => decodeLogits(model, KVCache.preallocated(2), STEPS)), ref, v)).toBeLessThan(1e-5);
      // The exact (concatenating) cache under inference weights: fused q|k|v with RoPE tables and a split.
      expect(tokenDiff(model.withInferenceWeights(() => decodeLogits(model, KVCache.empty(), STEPS)), ref, v)).toBeLessThan(1e-5);
      expect(tf.memory().numTensors).toBe(before);
    });

    test('extending an older preallocated cache again gives the same result (the branch gets a copy)', () => {
      const before = tf.memory().numTensors;
      model.withInferenceWeights(() => {
        const empty = KVCache.preallocated(8);
        const prefill = feed(model, 0, 5, empty);
        const first = feed(model, 5, 6, prefill.cache);
        const again = feed(model, 5, 6, prefill.cache);
        expect(maxAbsDiff(again.logits, first.logits)).toBe(0);
        // The first branch's buffers still hold its own position 5: extending it matches the second.
        const next1 = feed(model, 6, 7, first.cache);
        const next2 = feed(model, 6, 7, again.cache);
        expect(maxAbsDiff(next1.logits, next2.logits)).toBeLessThan(1e-6);
        for (const c of [empty, prefill.cache, first.cache, again.cache, next1.cache, next2.cache]) c.dispose();
      });
      expect(tf.memory().numTensors).toBe(before);
    });

    test('selectRows of a preallocated cache keeps appending in place for the kept rows', () => {
      const before = tf.memory().numTensors;
      const ref = fullLogits(model);
      const v = model.config.vocab_size;
      model.withInferenceWeights(() => {
        const prefill = feed(model, 0, 6, KVCache.preallocated(6));
        const row1 = prefill.cache.selectRows([1]);
        expect(row1.isPreallocated).toBe(true);
        prefill.cache.dispose();
        let cache = row1;
        for (let i = 6; i < 8; i++) { // past the capacity: the second step grows the buffers
          const inputIds = tf.tensor2d([[ids[1]![i]!]], undefined, 'int32');
          const o = model.forward({ inputIds, cache });
          expect(maxAbsDiff(o.logits.dataSync(), ref.subarray((8 + i) * v, (8 + i + 1) * v))).toBeLessThan(1e-5);
          tf.dispose([inputIds, o.logits, o.hidden]);
          cache.dispose();
          cache = o.cache!;
        }
        cache.dispose();
      });
      expect(tf.memory().numTensors).toBe(before);
    });

    test('gradients inside withInferenceWeights still reach the variables (the fused copies are not used)', () => {
      const q = model.param('model.layers.0.self_attn.q_proj.weight');
      const grads = model.withInferenceWeights(() => tf.variableGrads(() => tf.tidy(() =>
        tf.mean(tf.square(model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits)) as tf.Scalar), [q]));
      const g = grads.grads[q.name]!;
      expect(tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!)).toBeGreaterThan(0);
      tf.dispose([grads.value, g]);
      expect(() => tf.variableGrads(() => tf.tidy(() => tf.sum(model.forward({
        inputIds: tf.tensor2d([[1]], undefined, 'int32'), cache: KVCache.preallocated(4),
      }).logits) as tf.Scalar), [q])).toThrow(/cannot record gradients/);
    });
  });

  test('LoRA adapters are folded into the inference weights (unmerged, merged, disabled)', () => {
    const model = initLlama(GQA, new Rng(21));
    injectLora(model, { targetModules: 'all-linear', r: 4, alpha: 8, rng: new Rng(22) });
    const rng = new Rng(23);
    for (const a of loraAdapters(model).values()) {
      tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.5), a.B.shape)));
    }
    const before = tf.memory().numTensors;
    const ref = fullLogits(model);
    // Folding changes the rounding (x·(W + s·BA)ᵀ vs x·Wᵀ + s·(x·Aᵀ)·Bᵀ): compare normwise.
    expect(relativeError(model.withInferenceWeights(() => fullLogits(model)), ref)).toBeLessThan(1e-5);
    model.adaptersEnabled = false;
    const base = fullLogits(model);
    expect(maxAbsDiff(base, ref)).toBeGreaterThan(1e-3);
    expect(relativeError(model.withInferenceWeights(() => fullLogits(model)), base)).toBeLessThan(1e-5);
    model.adaptersEnabled = true;
    mergeLora(model);
    expect(relativeError(model.withInferenceWeights(() => fullLogits(model)), ref)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
    for (const a of loraAdapters(model).values()) a.dispose();
    model.dispose();
  });

  test('an adapter that cannot be folded keeps the ordinary path for its projection group', () => {
    const model = initLlama(GQA, new Rng(31));
    const shift = tf.scalar(0.25);
    model.adapters.set('model.layers.0.self_attn.k_proj', { apply: (_x, out) => tf.add(out, shift) });
    model.adapters.set('model.layers.1.mlp.up_proj', { apply: (_x, out) => tf.mul(out, shift) });
    const ref = fullLogits(model);
    expect(maxAbsDiff(model.withInferenceWeights(() => fullLogits(model)), ref)).toBeLessThan(1e-5);
    const v = model.config.vocab_size;
    expect(tokenDiff(model.withInferenceWeights(() => decodeLogits(model, KVCache.preallocated(8), STEPS)), ref, v)).toBeLessThan(1e-5);
    shift.dispose();
    model.dispose();
  });
});
