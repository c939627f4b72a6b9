/**
 * Batched generation with a KV cache and left padding.
 *
 * Prompts of different lengths are left-padded so every row's next token sits in the last column;
 * position ids come from the attention mask (cumsum − 1), so each row sees the positions it would see
 * alone. Each step computes only the last position's logits [B, V] and picks tokens with the seeded
 * Rng: without top-k/top-p/banned ids, from the softmax computed on the backend (`drawPlainRows`),
 * else row by row in float64 on the CPU. A row that hits a stop id keeps being fed the pad token
 * (mask 1, as HF does) but its later tokens are masked out of the result.
 *
 * The loop runs under the model's inference weights (fused, transposed, LoRA folded in) with a
 * preallocated KV cache that each step appends to in place — the decode steps are small products,
 * where per-op cost, not arithmetic, dominates (issue 11).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { eosTokenIds } from '../model/config.js';
import { KVCache } from '../model/kvcache.js';
import type { LlamaModel } from '../model/llama.js';
import { drawPlainRows } from './device_draw.js';
import { chooseToken, logSumExpRow, samplingLogProbs, type PlainDraw, type SamplingOptions } from './sampling.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** EOS cannot be drawn before this many new tokens (HF's min_new_tokens). */
  minNewTokens?: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** Ids that end a sequence. Default: the config's eos_token_id. */
  stopTokenIds?: number[];
  /** Fills the left padding and the tail of finished rows. Default: pad_token_id, else the first stop id, else 0. */
  padTokenId?: number;
  /** Required unless temperature is 0. */
  rng?: Rng;
  /** false: recompute the whole sequence every step (slow; the reference the cache is tested against). */
  useCache?: boolean;
}

export interface GenerateResult {
  /** Left-padded prompts [B, P] and their mask (1 = token). */
  promptIds: number[][];
  promptMask: number[][];
  /** Generated tokens [B, N] (N ≤ maxNewTokens: the loop stops once every row is done). */
  tokens: number[][];
  /** 1 for generated tokens up to and including the stop token, 0 after it. */
  mask: number[][];
  /** log p(token) under the sampling distribution (after min-tokens, temperature, top-k, top-p). 0 where mask is 0. */
  logprobs: number[][];
  /** log p(token) under the model itself (softmax of the raw logits, temperature 1). 0 where mask is 0. */
  rawLogprobs: number[][];
  /** Whether each row ended with a stop token (false: it ran out of maxNewTokens). */
  finished: boolean[];
}

/** Left-pad rows to the longest one. */
export function leftPad(rows: number[][], padId: number): { ids: number[][]; mask: number[][] } {
  const len = Math.max(0, ...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...new Array<number>(len - r.length).fill(padId), ...r]),
    mask: rows.map((r) => [...new Array<number>(len - r.length).fill(0), ...r.map(() => 1)]),
  };
}

export function generate(model: LlamaModel, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const sampling = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
  validate(prompts, opts, sampling.temperature, model.config.vocab_size);
  const stopIds = opts.stopTokenIds ?? eosTokenIds(model.config);
  const padId = opts.padTokenId ?? model.config.pad_token_id ?? stopIds[0] ?? 0;
  const minNew = opts.minNewTokens ?? 0;
  const useCache = opts.useCache ?? true;
  const b = prompts.length;
  const vocab = model.config.vocab_size;

  const { ids: promptIds, mask: promptMask } = leftPad(prompts, padId);
  const seqIds = promptIds.map((r) => [...r]); // prompt + generated, fed to the model
  const seqMask = promptMask.map((r) => [...r]);
  const result: GenerateResult = {
    promptIds,
    promptMask,
    tokens: prompts.map(() => []),
    mask: prompts.map(() => []),
    logprobs: prompts.map(() => []),
    rawLogprobs: prompts.map(() => []),
    finished: prompts.map(() => false),
  };

  // Rows without top-k/top-p/banned ids are drawn on the backend (the common case: PPO rollouts).
  const filtersTopK = sampling.topK > 0 && sampling.topK < vocab;
  // Room for every position fed: the prompt, then all new tokens but the last.
  let cache: KVCache | null = useCache ? KVCache.preallocated(promptIds[0]!.length + opts.maxNewTokens - 1) : null;
  let feed = seqIds; // what the next forward sees: the whole prompt first, then one column a step
  // Fused and adapter-folded weights for the whole loop (released when it ends).
  model.withInferenceWeights(() => {
    try {
      for (let step = 0; step < opts.maxNewTokens; step++) {
        const out = lastLogits(model, feed, seqMask, cache);
        if (cache) {
          cache.dispose();
          cache = out.cache!;
        }
        const banned = step < minNew ? stopIds : [];
        const plain = banned.length === 0 && (sampling.temperature === 0 || (!filtersTopK && sampling.topP >= 1));
        let draws: PlainDraw[];
        try {
          draws = plain
            ? drawPlainRows(out.logits, sampling.temperature, uniforms(b, sampling.temperature, opts.rng))
            : drawRows(out.logits, sampling, banned, opts.rng);
        } finally {
          out.logits.dispose();
        }
        const next: number[] = [];
        for (let r = 0; r < b; r++) {
          const draw = draws[r]!;
          const tok = draw.token;
          const done = result.finished[r]!;
          result.tokens[r]!.push(done ? padId : tok);
          result.mask[r]!.push(done ? 0 : 1);
          result.logprobs[r]!.push(done ? 0 : draw.logprob);
          result.rawLogprobs[r]!.push(done ? 0 : draw.rawLogprob);
          if (!done && stopIds.includes(tok)) result.finished[r] = true;
          next.push(done ? padId : tok);
        }
        if (result.finished.every((f) => f)) break;
        for (let r = 0; r < b; r++) {
          seqIds[r]!.push(next[r]!);
          seqMask[r]!.push(1);
        }
        feed = cache ? next.map((t) => [t]) : seqIds;
      }
    } finally {
      cache?.dispose();
    }
  });
  return result;
}

/** One uniform number per row, in row order (none when greedy). */
function uniforms(rows: number, temperature: number, rng: Rng | undefined): number[] {
  if (temperature === 0) return [];
  if (!rng) throw new Error('sampling with temperature > 0 needs an Rng');
  return Array.from({ length: rows }, () => rng.uniform());
}

/**
 * The general path, row by row on the CPU in float64: the sampling distribution as log-probabilities
 * (min-tokens ban, temperature, top-k, top-p), then one draw from it.
 */
function drawRows(logits: tf.Tensor2D, sampling: SamplingOptions, banned: readonly number[], rng: Rng | undefined): PlainDraw[] {
  const [b, vocab] = logits.shape;
  const values = logits.dataSync() as Float32Array;
  const out: PlainDraw[] = [];
  for (let r = 0; r < b; r++) {
    const row = values.subarray(r * vocab, (r + 1) * vocab);
    const logp = samplingLogProbs(row, sampling, banned);
    const token = chooseToken(logp, sampling, rng);
    out.push({ token, logprob: logp[token]!, rawLogprob: row[token]! - logSumExpRow(row) });
  }
  return out;
}

/** One forward; returns the last position's logits [B, V] (the caller disposes them) and the new cache. */
function lastLogits(
  model: LlamaModel,
  feed: number[][],
  mask: number[][],
  cache: KVCache | null,
): { logits: tf.Tensor2D; cache?: KVCache } {
  const ids = tf.tensor2d(feed, undefined, 'int32');
  const maskT = tf.tensor2d(mask, undefined, 'int32');
  try {
    const out = model.forward({ inputIds: ids, attentionMask: maskT, logitsToKeep: 1, ...(cache ? { cache } : {}) });
    const [b, , v] = out.logits.shape;
    const logits = tf.reshape(out.logits, [b, v]) as tf.Tensor2D;
    tf.dispose([out.logits, out.hidden]);
    return { logits, ...(out.cache ? { cache: out.cache } : {}) };
  } finally {
    tf.dispose([ids, maskT]);
  }
}

function validate(prompts: number[][], opts: GenerateOptions, temperature: number, vocab: number): void {
  if (prompts.length === 0) throw new UserError('generate: no prompts');
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new UserError(`generate: prompt ${i} is empty`);
    const bad = p.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== undefined) throw new UserError(`generate: prompt ${i} has token id ${bad} outside the vocabulary (${vocab})`);
  });
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new UserError('generate: max new tokens (--max-new-tokens, generation.max_new_tokens) must be a non-negative integer');
  if (!(temperature >= 0)) throw new UserError('generate: temperature must be ≥ 0');
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new UserError('generate: topP must be in (0, 1]');
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new UserError('generate: topK must be a non-negative integer');
  if (temperature > 0 && !opts.rng) throw new UserError('generate: sampling (temperature > 0) needs opts.rng');
}
