/**
 * Llama forward and generation throughput for the two bench models of issue 3:
 *   tiny : vocab 512,  hidden 128, 4 layers, 4 heads (2 KV), intermediate 344, forward batch 8 × seq 128
 *   small: vocab 4096, hidden 288, 6 layers, 6 heads (6 KV), intermediate 768, forward batch 8 × seq 256
 *   generation: batch 16, 16-token prompts, 64 new tokens, temperature 1 (KV cache, sampling on the CPU).
 * Also the share of a decode step spent copying the KV cache (the concat that appends one position),
 * which is what a preallocated cache would save.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine/index.js';
import { Rng } from '../src/engine/rng.js';
import { generate } from '../src/generation/generate.js';
import { headDim, llamaConfig, type LlamaConfig } from '../src/model/config.js';
import { KVCache } from '../src/model/kvcache.js';
import { initLlama, type LlamaModel } from '../src/model/llama.js';
import { timePerCall, type Bench, type BenchContext } from './harness.js';

interface BenchModel {
  name: 'tiny' | 'small';
  config: LlamaConfig;
  batch: number;
  seq: number;
}

export const BENCH_MODELS: BenchModel[] = [
  {
    name: 'tiny',
    config: llamaConfig({ vocab_size: 512, hidden_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 344 }),
    batch: 8,
    seq: 128,
  },
  {
    name: 'small',
    config: llamaConfig({ vocab_size: 4096, hidden_size: 288, num_hidden_layers: 6, num_attention_heads: 6, num_key_value_heads: 6, intermediate_size: 768 }),
    batch: 8,
    seq: 256,
  },
];

const GEN = { batch: 16, promptLen: 16, newTokens: 64, temperature: 1 };

function randomIds(rng: Rng, rows: number, cols: number, vocab: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.int(vocab)));
}

async function forwardTokensPerSecond(model: LlamaModel, m: BenchModel, rng: Rng, quick: boolean): Promise<number> {
  const ids = tf.tensor2d(randomIds(rng, m.batch, m.seq, m.config.vocab_size), undefined, 'int32');
  const ms = await timePerCall(
    () => {
      const out = model.forward({ inputIds: ids });
      out.logits.dataSync();
      tf.dispose([out.logits, out.hidden]);
    },
    { warmup: 1, minMs: quick ? 0 : 2000, minIters: quick ? 1 : 3 },
  );
  ids.dispose();
  return (m.batch * m.seq) / (ms / 1000);
}

async function generateTokensPerSecond(model: LlamaModel, m: BenchModel, rng: Rng, quick: boolean): Promise<number> {
  const prompts = randomIds(rng, GEN.batch, GEN.promptLen, m.config.vocab_size);
  const newTokens = quick ? 8 : GEN.newTokens;
  const ms = await timePerCall(
    () => generate(model, prompts, { maxNewTokens: newTokens, temperature: GEN.temperature, stopTokenIds: [], rng }),
    { warmup: 1, minMs: 0, minIters: quick ? 1 : 2 },
  );
  return (GEN.batch * newTokens) / (ms / 1000);
}

/** Milliseconds of one decode step at the end of generation, and of the KV concat within it. */
async function decodeStepCost(model: LlamaModel, m: BenchModel, rng: Rng, quick: boolean): Promise<{ step: number; concat: number }> {
  const cfg = m.config;
  const past = GEN.promptLen + GEN.newTokens - 1;
  const kvShape = [GEN.batch, cfg.num_key_value_heads, past, headDim(cfg)];
  const one = [GEN.batch, cfg.num_key_value_heads, 1, headDim(cfg)];
  const opts = { warmup: 1, minMs: quick ? 0 : 500, minIters: 3 };
  const pastKV = tf.zeros(kvShape);
  const newKV = tf.zeros(one);
  // No readback inside: a decode step never reads its cache back either.
  const concat = await timePerCall(() => {
    const all = Array.from({ length: 2 * cfg.num_hidden_layers }, () => tf.concat([pastKV, newKV], 2));
    tf.sum(all[all.length - 1]!).dataSync(); // one sync so queued backends finish the work
    tf.dispose(all);
  }, opts);
  // The step itself: prefill `past` positions once, then time feeding one more token.
  const ids = tf.tensor2d(randomIds(rng, GEN.batch, past, cfg.vocab_size), undefined, 'int32');
  const prefill = model.forward({ inputIds: ids, cache: KVCache.empty(), logitsToKeep: 1 });
  tf.dispose([prefill.logits, prefill.hidden, ids]);
  const next = tf.tensor2d(randomIds(rng, GEN.batch, 1, cfg.vocab_size), undefined, 'int32');
  const step = await timePerCall(() => {
    const out = model.forward({ inputIds: next, cache: prefill.cache!, logitsToKeep: 1 });
    out.logits.dataSync();
    tf.dispose([out.logits, out.hidden]);
    out.cache!.dispose();
  }, opts);
  prefill.cache!.dispose();
  tf.dispose([pastKV, newKV, next]);
  return { step, concat };
}

async function runOn(ctx: BenchContext, backend: 'wasm' | 'cpu' | 'tensorflow'): Promise<void> {
  await initEngine({ backend });
  for (const m of BENCH_MODELS) {
    const rng = new Rng(1);
    const model = initLlama(m.config, rng);
    const emit = (metric: string, value: number, unit: string, extra: Record<string, number> = {}) =>
      ctx.emit({ model: m.name, metric, value, unit, backend, ...extra });
    emit('forward_tok_s', await forwardTokensPerSecond(model, m, rng, ctx.quick), 'tok/s', { batch: m.batch, seq: m.seq });
    emit('generate_tok_s', await generateTokensPerSecond(model, m, rng, ctx.quick), 'tok/s', {
      batch: GEN.batch, prompt: GEN.promptLen, new_tokens: ctx.quick ? 8 : GEN.newTokens,
    });
    const cost = await decodeStepCost(model, m, rng, ctx.quick);
    emit('decode_step_ms', cost.step, 'ms', { past: GEN.promptLen + GEN.newTokens - 1 });
    emit('kv_concat_share', cost.concat / cost.step, 'fraction');
    model.dispose();
  }
}

export const bench: Bench = {
  name: 'model',
  description: 'Llama forward and generation tokens/s for the tiny and small bench models',
  async run(ctx) {
    await runOn(ctx, ctx.backend === 'auto' ? 'wasm' : ctx.backend);
  },
};
