import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { generate, leftPad } from '../../src/generation/generate.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';

let model: LlamaModel;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  // Large init so logits are well separated (greedy choices are not decided by rounding noise).
  const cfg = llamaConfig({
    vocab_size: 48, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, initializer_range: 0.5, pad_token_id: 0, eos_token_id: 2,
  });
  model = initLlama(cfg, new Rng(5));
});
afterAll(() => model.dispose());

const prompts = [[1, 7, 9, 30, 12], [1, 40], [1, 22, 5]];

test('leftPad pads on the left and masks the pads', () => {
  expect(leftPad([[5, 6, 7], [8]], 0)).toEqual({ ids: [[5, 6, 7], [0, 0, 8]], mask: [[1, 1, 1], [0, 0, 1]] });
});

test('cached generation equals recomputing the full forward at each step (32 greedy steps)', () => {
  const before = tf.memory().numTensors;
  const opts = { maxNewTokens: 32, temperature: 0, stopTokenIds: [] };
  const cached = generate(model, prompts, opts);
  expect(tf.memory().numTensors).toBe(before);
  const full = generate(model, prompts, { ...opts, useCache: false });
  expect(cached.tokens).toEqual(full.tokens);
  expect(cached.tokens[0]).toHaveLength(32);
  for (let r = 0; r < prompts.length; r++) {
    for (let i = 0; i < 32; i++) {
      expect(Math.abs(cached.rawLogprobs[r]![i]! - full.rawLogprobs[r]![i]!)).toBeLessThan(1e-4);
      expect(cached.logprobs[r]![i]).toBe(0); // greedy: the sampling distribution is one-hot
    }
  }
  // The tokens are not trivially constant.
  expect(new Set(cached.tokens.flat()).size).toBeGreaterThan(5);
});

test('a left-padded batch generates what each prompt generates alone', () => {
  const batch = generate(model, prompts, { maxNewTokens: 12, temperature: 0, stopTokenIds: [] });
  prompts.forEach((p, r) => {
    const alone = generate(model, [p], { maxNewTokens: 12, temperature: 0, stopTokenIds: [] });
    expect(batch.tokens[r]).toEqual(alone.tokens[0]);
    for (let i = 0; i < 12; i++) expect(Math.abs(batch.rawLogprobs[r]![i]! - alone.rawLogprobs[0]![i]!)).toBeLessThan(1e-4);
  });
  expect(batch.promptMask[1]).toEqual([0, 0, 0, 1, 1]);
});

test('a stop token ends its row: mask 1 through the stop token, pad and 0 after; loop ends when all stop', () => {
  const free = generate(model, prompts, { maxNewTokens: 10, temperature: 0, stopTokenIds: [] });
  const stop = free.tokens[0]![3]!; // some token row 0 produces at step 3
  const firstAt = (row: number[]) => row.indexOf(stop);
  const res = generate(model, prompts, { maxNewTokens: 10, temperature: 0, stopTokenIds: [stop] });
  prompts.forEach((_, r) => {
    const k = firstAt(free.tokens[r]!);
    if (k === -1) {
      expect(res.mask[r]!.every((m) => m === 1)).toBe(true);
      expect(res.finished[r]).toBe(false);
      return;
    }
    expect(res.finished[r]).toBe(true);
    expect(res.tokens[r]!.slice(0, k + 1)).toEqual(free.tokens[r]!.slice(0, k + 1));
    expect(res.mask[r]!.slice(0, k + 1).every((m) => m === 1)).toBe(true);
    expect(res.mask[r]!.slice(k + 1).every((m) => m === 0)).toBe(true);
    expect(res.tokens[r]!.slice(k + 1).every((t) => t === 0)).toBe(true); // pad id
    expect(res.rawLogprobs[r]!.slice(k + 1).every((l) => l === 0)).toBe(true);
  });
  // With every row's first token as a stop id, one step ends everything.
  const firsts = free.tokens.map((row) => row[0]!);
  const one = generate(model, prompts, { maxNewTokens: 10, temperature: 0, stopTokenIds: firsts });
  expect(one.tokens.map((r) => r.length)).toEqual([1, 1, 1]);
  // min_new_tokens bans them for the first 3 steps.
  const min = generate(model, prompts, { maxNewTokens: 5, minNewTokens: 3, temperature: 0, stopTokenIds: firsts });
  for (let r = 0; r < 3; r++) expect(min.tokens[r]!.slice(0, 3)).not.toContain(firsts[r]);
  expect(min.mask.map((r) => r.slice(0, 3))).toEqual([[1, 1, 1], [1, 1, 1], [1, 1, 1]]);
});

test('sampling is reproducible from the seed; log-probs under the sampling distribution and the raw model', () => {
  const opts = { maxNewTokens: 8, temperature: 0.7, topK: 10, topP: 0.9, stopTokenIds: [] };
  const a = generate(model, prompts, { ...opts, rng: new Rng(9) });
  const b = generate(model, prompts, { ...opts, rng: new Rng(9) });
  const c = generate(model, prompts, { ...opts, rng: new Rng(10) });
  expect(a).toEqual(b);
  expect(a.tokens).not.toEqual(c.tokens);
  // Temperature 1 with top-k/top-p only truncates and renormalises: no drawn token gets less likely.
  const cut = generate(model, prompts, { maxNewTokens: 8, temperature: 1, topK: 10, topP: 0.9, stopTokenIds: [], rng: new Rng(4) });
  let raised = 0;
  for (let r = 0; r < 3; r++) {
    for (let i = 0; i < 8; i++) {
      expect(cut.logprobs[r]![i]!).toBeLessThanOrEqual(0);
      expect(cut.logprobs[r]![i]!).toBeGreaterThan(cut.rawLogprobs[r]![i]! - 1e-9);
      if (cut.logprobs[r]![i]! > cut.rawLogprobs[r]![i]! + 1e-3) raised++;
    }
  }
  expect(raised).toBeGreaterThan(0);
  // Temperature 1 with no truncation: the two log-probs coincide.
  const plain = generate(model, prompts, { maxNewTokens: 6, temperature: 1, stopTokenIds: [], rng: new Rng(3) });
  for (let r = 0; r < 3; r++) for (let i = 0; i < 6; i++) expect(plain.logprobs[r]![i]!).toBeCloseTo(plain.rawLogprobs[r]![i]!, 10);
  // top-k 1 is greedy.
  const k1 = generate(model, prompts, { maxNewTokens: 6, temperature: 1, topK: 1, stopTokenIds: [], rng: new Rng(3) });
  const greedy = generate(model, prompts, { maxNewTokens: 6, temperature: 0, stopTokenIds: [] });
  expect(k1.tokens).toEqual(greedy.tokens);
});

test('bad arguments are refused before any forward', () => {
  expect(() => generate(model, [[1, 99]], { maxNewTokens: 2, temperature: 0 })).toThrow(/token id 99/);
  expect(() => generate(model, [[1]], { maxNewTokens: 2, temperature: 1 })).toThrow(/needs opts.rng/);
  expect(() => generate(model, [[]], { maxNewTokens: 2, temperature: 0 })).toThrow(/prompt 0 is empty/);
});

/**
 * log p(token) of every generated token under the plain model (one full forward over prompt +
 * tokens, no cache, no inference weights), in float64 — the reference for `rawLogprobs`.
 */
function referenceLogprobs(m: LlamaModel, res: ReturnType<typeof generate>): number[][] {
  const seq = res.promptIds.map((p, r) => [...p, ...res.tokens[r]!]);
  const seqMask = res.promptMask.map((p, r) => [...p, ...res.mask[r]!.map(() => 1)]);
  const logits = tf.tidy(() => m.forward({
    inputIds: tf.tensor2d(seq, undefined, 'int32'),
    attentionMask: tf.tensor2d(seqMask, undefined, 'int32'),
  }).logits.arraySync()) as number[][][];
  const p = res.promptIds[0]!.length;
  return res.tokens.map((row, r) => row.map((tok, i) => {
    const l = logits[r]![p + i - 1]!;
    const max = Math.max(...l);
    return l[tok]! - max - Math.log(l.reduce((s, x) => s + Math.exp(x - max), 0));
  }));
}

function expectLogprobsClose(got: number[][], want: number[][], mask: number[][], tol: number): void {
  got.forEach((row, r) => row.forEach((x, i) => {
    if (mask[r]![i]) expect(Math.abs(x - want[r]![i]!)).toBeLessThan(tol);
  }));
}

test('raw log-probs are the plain model\'s: greedy, temperature 1 and 0.7 (drawn on the backend), and top-k (drawn in JS)', () => {
  for (const opts of [
    { temperature: 0 },
    { temperature: 1, rng: new Rng(5) },
    { temperature: 0.7, rng: new Rng(6) },
    { temperature: 1, topK: 5, rng: new Rng(7) },
  ]) {
    const res = generate(model, prompts, { maxNewTokens: 10, stopTokenIds: [], ...opts });
    expectLogprobsClose(res.rawLogprobs, referenceLogprobs(model, res), res.mask, 1e-4);
  }
});

describe('on wasm', () => {
  let wasmModel: LlamaModel;
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
    wasmModel = initLlama(model.config, new Rng(5));
  });
  afterAll(async () => {
    wasmModel.dispose();
    await initEngine({ backend: 'cpu' });
  });

  test('cached generation equals full recompute and the plain model; a left-padded batch equals each prompt alone; no tensors left', () => {
    const before = tf.memory().numTensors;
    const opts = { maxNewTokens: 24, temperature: 0, stopTokenIds: [] };
    const cached = generate(wasmModel, prompts, opts);
    expect(tf.memory().numTensors).toBe(before);
    const full = generate(wasmModel, prompts, { ...opts, useCache: false });
    expect(cached.tokens).toEqual(full.tokens);
    expectLogprobsClose(cached.rawLogprobs, full.rawLogprobs, cached.mask, 1e-4);
    expectLogprobsClose(cached.rawLogprobs, referenceLogprobs(wasmModel, cached), cached.mask, 1e-4);
    expect(new Set(cached.tokens.flat()).size).toBeGreaterThan(5);
    prompts.forEach((p, r) => {
      const alone = generate(wasmModel, [p], { ...opts, maxNewTokens: 12 });
      expect(cached.tokens[r]!.slice(0, 12)).toEqual(alone.tokens[0]);
    });
  });

  test('sampled generation: reproducible, and its log-probs are the plain model\'s', () => {
    const before = tf.memory().numTensors;
    const a = generate(wasmModel, prompts, { maxNewTokens: 16, temperature: 1, stopTokenIds: [], rng: new Rng(8) });
    const b = generate(wasmModel, prompts, { maxNewTokens: 16, temperature: 1, stopTokenIds: [], rng: new Rng(8) });
    expect(a).toEqual(b);
    expect(tf.memory().numTensors).toBe(before);
    expectLogprobsClose(a.rawLogprobs, referenceLogprobs(wasmModel, a), a.mask, 1e-4);
    expectLogprobsClose(a.logprobs, a.rawLogprobs, a.mask, 1e-9);
  });
});
