import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig, type LlamaConfig } from '../../src/model/config.js';
import { describeModel } from '../../src/model/describe.js';
import { loadHfModel } from '../../src/model/io/hf.js';
import { KVCache } from '../../src/model/kvcache.js';
import { attachScoreHead, initLlama, LlamaModel } from '../../src/model/llama.js';
import { lastTokenIndex } from '../../src/model/heads.js';
import { packagePath } from '../../src/paths.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

/** Small GQA model (2 KV heads for 4 query heads), tied embeddings. */
const smallCfg: LlamaConfig = llamaConfig({
  vocab_size: 40,
  hidden_size: 24,
  intermediate_size: 36,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  tie_word_embeddings: true,
  rms_norm_eps: 1e-5,
  initializer_range: 0.3,
  pad_token_id: 0,
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('reference logits', () => {
  // Expected logits were produced by scripts/llama_reference.py: an independent numpy float64
  // implementation written from HF's modeling_llama.py equations (GQA, untied head, rope_theta 100,
  // left-padded batch), which also wrote config.json and model.safetensors with its own writer.
  test('a checkpoint from the independent implementation reproduces its logits within 1e-4', () => {
    const dir = packagePath('test', 'fixtures', 'llama_ref');
    const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as {
      input_ids: number[][];
      attention_mask: number[][];
      logits: number[][][];
    };
    const model = loadHfModel(dir);
    expect(model.config.num_key_value_heads).toBe(2);
    expect(model.hasLmHead).toBe(true);
    const before = tf.memory().numTensors;
    const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
    const mask = tf.tensor2d(expected.attention_mask, undefined, 'int32');
    const out = model.forward({ inputIds: ids, attentionMask: mask });
    const logits = out.logits.arraySync() as number[][][];
    let worst = 0;
    let compared = 0;
    expected.attention_mask.forEach((row, b) =>
      row.forEach((m, t) => {
        if (m === 1) {
          worst = Math.max(worst, maxAbsDiff(logits[b]![t]!, expected.logits[b]![t]!));
          compared++;
        }
      }),
    );
    expect(compared).toBe(15);
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([ids, mask, out.logits, out.hidden]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('LlamaModel', () => {
  let model: LlamaModel;
  beforeAll(() => {
    model = initLlama(smallCfg, new Rng(7));
  });
  afterAll(() => model.dispose());

  test('a left-padded batch gives each sequence the logits it gets alone (within 1e-5)', () => {
    const seqs = [[5, 9, 13, 2, 7, 31], [11, 4], [3, 17, 22, 8]];
    const t = 6;
    const padded = seqs.map((s) => [...new Array(t - s.length).fill(0), ...s]);
    const mask = seqs.map((s) => [...new Array(t - s.length).fill(0), ...s.map(() => 1)]);
    const batch = tf.tidy(() =>
      model.forward({ inputIds: tf.tensor2d(padded, undefined, 'int32'), attentionMask: tf.tensor2d(mask, undefined, 'int32') }).logits.arraySync(),
    ) as number[][][];
    seqs.forEach((s, b) => {
      const alone = tf.tidy(() => model.forward({ inputIds: tf.tensor2d([s], undefined, 'int32') }).logits.arraySync()) as number[][][];
      for (let i = 0; i < s.length; i++) {
        expect(maxAbsDiff(batch[b]![t - s.length + i]!, alone[0]![i]!)).toBeLessThan(1e-5);
      }
    });
  });

  test('incremental decoding with a KV cache equals the full forward', () => {
    const ids = [[0, 0, 4, 9, 13, 21, 6, 2], [7, 3, 5, 1, 19, 23, 11, 30]];
    const mask = [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]];
    const before = tf.memory().numTensors;
    const full = tf.tidy(() =>
      model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32'), attentionMask: tf.tensor2d(mask, undefined, 'int32') }).logits.arraySync(),
    ) as number[][][];
    // Prefill 5 positions, then feed 1, then 2 at a time.
    let cache = KVCache.empty();
    const steps = [[0, 5], [5, 6], [6, 8]] as const;
    for (const [from, to] of steps) {
      const out = model.forward({
        inputIds: tf.tensor2d(ids.map((r) => r.slice(from, to)), undefined, 'int32'),
        attentionMask: tf.tensor2d(mask.map((r) => r.slice(0, to)), undefined, 'int32'),
        cache,
      });
      const got = out.logits.arraySync() as number[][][];
      for (let b = 0; b < 2; b++) {
        for (let i = from; i < to; i++) {
          if (mask[b]![i]) expect(maxAbsDiff(got[b]![i - from]!, full[b]![i]!)).toBeLessThan(1e-5);
        }
      }
      cache.dispose();
      cache = out.cache!;
      expect(cache.length).toBe(to);
      expect(cache.layers[0]!.k.shape).toEqual([2, 2, to, 6]);
      tf.dispose([out.logits, out.hidden]);
    }
    cache.dispose();
    // Only the inputs of each step (ids, mask) were left undisposed: 2 tensors a step.
    expect(tf.memory().numTensors).toBe(before + 2 * steps.length);
  });

  test('logitsToKeep returns only the last positions', () => {
    tf.tidy(() => {
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, 'int32');
      const all = model.forward({ inputIds: ids }).logits;
      const last = model.forward({ inputIds: ids, logitsToKeep: 1 }).logits;
      expect(last.shape).toEqual([1, 1, 40]);
      expect(maxAbsDiff(last.dataSync(), tf.slice(all, [0, 3, 0], [1, 1, 40]).dataSync())).toBe(0);
    });
  });

  test('linear() routes through a registered adapter only while adapters are enabled', () => {
    const name = 'model.layers.1.mlp.up_proj';
    expect(model.linearModuleNames()).toHaveLength(14);
    expect(model.linearModuleNames()).toContain(name);
    const calls: number[][] = [];
    model.adapters.set(name, {
      apply: (x, base) => {
        calls.push(x.shape);
        return tf.add(base, 1);
      },
    });
    try {
      tf.tidy(() => {
        const x = tf.ones([2, 3, 24]);
        const base = (() => {
          model.adaptersEnabled = false;
          return model.linear(name, x);
        })();
        model.adaptersEnabled = true;
        const adapted = model.linear(name, x);
        expect(base.shape).toEqual([2, 3, 36]);
        expect(calls).toEqual([[2, 3, 24]]);
        expect(maxAbsDiff(tf.sub(adapted, base).dataSync(), new Array(2 * 3 * 36).fill(1))).toBeLessThan(1e-6);
      });
    } finally {
      model.adapters.delete(name);
      model.adaptersEnabled = true;
    }
  });

  test('initLlama follows HF init: norms ones, pad row of the embedding zero, same seed same weights', () => {
    const a = initLlama(smallCfg, new Rng(3));
    const b = initLlama(smallCfg, new Rng(3));
    expect(a.params.has('lm_head.weight')).toBe(false); // tied
    expect(Array.from(a.param('model.norm.weight').dataSync())).toEqual(new Array(24).fill(1));
    const embed = a.param('model.embed_tokens.weight').dataSync();
    expect(Array.from(embed.slice(0, 24))).toEqual(new Array(24).fill(0)); // pad_token_id 0
    for (const [name, v] of a.params) expect(Array.from(v.dataSync())).toEqual(Array.from(b.param(name).dataSync()));
    expect(a.numParameters()).toBe(describeModel(smallCfg).parameters);
    a.dispose();
    b.dispose();
  });
});

describe('scalar head', () => {
  test('lastTokenIndex is the rightmost real token under left, right and no padding', () => {
    const idx = tf.tidy(() => lastTokenIndex(tf.tensor2d([[0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]], undefined, 'int32'), 4).arraySync());
    expect(idx).toEqual([3, 1, 3]);
  });

  test('scoreAtLastToken picks w · h at that token (hand-computed)', () => {
    const model = initLlama(smallCfg, new Rng(1));
    const head = attachScoreHead(model, new Rng(2));
    head.weight.assign(tf.tensor2d([[...new Array(23).fill(0), 2]]));
    tf.tidy(() => {
      // hidden[b, t, 23] = 10·b + t, so the score at token t of row b is 2·(10·b + t).
      const h = tf.tensor3d(Array.from({ length: 2 }, (_, b) => Array.from({ length: 3 }, (_, t) => [...new Array(23).fill(5), 10 * b + t])));
      const scores = head.scoreAtLastToken(h, tf.tensor2d([[0, 1, 1], [1, 1, 0]], undefined, 'int32'));
      expect(Array.from(scores.dataSync())).toEqual([4, 22]);
      expect(head.scoreAllTokens(h).arraySync()).toEqual([[0, 2, 4], [20, 22, 24]]);
    });
    expect(model.params.get('score.weight')).toBe(head.weight);
    model.dispose();
  });
});

describe('describeModel', () => {
  test('parameter count of the tiny bench model (hand-computed)', () => {
    const tiny = llamaConfig({
      vocab_size: 512, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 344,
    });
    // embed 512·128 = 65536; per layer q 16384 + k 8192 + v 8192 + o 16384 + 3·44032 MLP + 256 norms
    // = 181504; ×4 = 726016; final norm 128; untied lm_head 65536.
    const d = describeModel(tiny, { batchSize: 8, seqLen: 128 });
    expect(d.parametersPerLayer).toBe(181504);
    expect(d.parameters).toBe(857216);
    expect(d.weightBytes.f32).toBe(4 * 857216);
    expect(d.kvCacheBytesPerToken).toBe(2 * 4 * 2 * 32 * 4);
    expect(d.lines[0]).toContain('857,216');
  });
});

describe('training use', () => {
  test('gradients of a loss on the logits reach every weight; no tensor leaks', () => {
    const model = initLlama(smallCfg, new Rng(21));
    const ids = tf.tensor2d([[0, 3, 5, 7], [2, 4, 6, 8]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1, 1, 1], [1, 1, 1, 1]], undefined, 'int32');
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward({ inputIds: ids, attentionMask: mask, training: true });
      return tf.mean(tf.square(out.logits)) as tf.Scalar;
    }, [...model.params.values()]);
    expect(Object.keys(grads)).toHaveLength(model.params.size);
    for (const g of Object.values(grads)) expect(tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!)).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ids, mask]);
    model.dispose();
  });
});

describe('wasm backend', () => {
  test('the reference checkpoint gives the same logits on wasm (within 1e-4 of the numpy reference)', async () => {
    await initEngine({ backend: 'wasm' });
    try {
      const dir = packagePath('test', 'fixtures', 'llama_ref');
      const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8')) as { input_ids: number[][]; attention_mask: number[][]; logits: number[][][] };
      const model = loadHfModel(dir);
      const logits = tf.tidy(() =>
        model.forward({
          inputIds: tf.tensor2d(expected.input_ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(expected.attention_mask, undefined, 'int32'),
        }).logits.arraySync(),
      ) as number[][][];
      let worst = 0;
      expected.attention_mask.forEach((row, b) =>
        row.forEach((m, t) => {
          if (m === 1) worst = Math.max(worst, maxAbsDiff(logits[b]![t]!, expected.logits[b]![t]!));
        }),
      );
      expect(worst).toBeLessThan(1e-4);
      model.dispose();
    } finally {
      await initEngine({ backend: 'cpu' });
    }
  });
});
