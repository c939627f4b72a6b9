/**
 * PPO rollout: sample responses, then record — with the very forward functions the training step
 * uses — the policy's log-probs (π_old), the reference's (π_ref: the same backbone, adapters off),
 * the critic's values and the reward model's score of each full sequence.
 *
 * Layout: every sequence is [left-padded prompt (P columns) | response (N columns)], so response
 * token j sits at column P + j and is predicted by the logits (and valued by the critic) at column
 * P + j − 1. Response padding after EOS has attention mask 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { generate } from '../generation/index.js';
import { trainableVariables, withAdaptersDisabled } from '../lora/inject.js';
import type { ScalarHead } from '../model/heads.js';
import type { LlamaModel } from '../model/llama.js';
import { applyMask, type Rows } from './advantages.js';
import { entropyFromLogits } from './losses.js';

/** The critic V(s): one value per response position. */
export interface Critic {
  /** Values of the states before each response token. [B, P+N] ids → [B, N] */
  values(ids: tf.Tensor2D, mask: tf.Tensor2D, promptLen: number, training: boolean): tf.Tensor2D;
  /** The critic's own trainable weights (names unique within the critic). */
  trainableVariables(): Map<string, tf.Variable>;
}

/** Columns P−1 … P+N−2 of a [B, P+N, ...] tensor: the positions that predict / value response tokens. */
function responsePositions<T extends tf.Tensor>(x: T, promptLen: number, n: number): T {
  const begin = [0, promptLen - 1, ...new Array<number>(x.rank - 2).fill(0)];
  const size = [-1, n, ...new Array<number>(x.rank - 2).fill(-1)];
  return tf.slice(x, begin, size) as T;
}

/**
 * A separate value model (default: initialised from the reward model): its scalar head read at
 * every position. All its weights are trained.
 */
export function valueModelCritic(model: LlamaModel): Critic {
  const head = model.scoreHead;
  if (!head) throw new Error('valueModelCritic: the value model has no score head (score.weight)');
  return {
    values: (ids, mask, promptLen, training) => tf.tidy(() => {
      const n = ids.shape[1] - promptLen;
      const { hidden } = model.hiddenStates({ inputIds: ids, attentionMask: mask, training }); // [B, P+N, H]
      return responsePositions(head.scoreAllTokens(hidden), promptLen, n); // [B, N]
    }),
    trainableVariables: () => {
      for (const v of model.params.values()) v.trainable = true;
      return new Map(model.params);
    },
  };
}

/**
 * A value head on the policy's own hidden states (with adapters on): shares the trunk, so the
 * value loss also moves the policy's adapters. Only the head is the critic's own weight.
 */
export function policyHeadCritic(policy: LlamaModel, head: ScalarHead): Critic {
  return {
    values: (ids, mask, promptLen, training) => tf.tidy(() => {
      const n = ids.shape[1] - promptLen;
      const { hidden } = policy.hiddenStates({ inputIds: ids, attentionMask: mask, training }); // [B, P+N, H]
      return responsePositions(head.scoreAllTokens(hidden), promptLen, n); // [B, N]
    }),
    trainableVariables: () => new Map([['value_head.weight', head.weight]]),
  };
}

/**
 * The reward model's own backbone with LoRA adapters (already injected) and a value head of its own
 * (started as a copy of the reward model's score head): one copy of the frozen weights serves the
 * critic (adapters on, value head) and the reward model (adapters off, original head — what
 * {@link sequenceScores} always reads), as the policy and the reference share theirs. Only the
 * adapters and the value head train; the scores stay exactly the reward model's.
 */
export function rewardModelLoraCritic(rewardModel: LlamaModel, head: ScalarHead): Critic {
  if (rewardModel.scoreHead?.weight === head.weight) throw new Error('rewardModelLoraCritic: the value head must be a copy, not the reward model\'s own score head');
  return {
    values: (ids, mask, promptLen, training) => tf.tidy(() => {
      const n = ids.shape[1] - promptLen;
      const { hidden } = rewardModel.hiddenStates({ inputIds: ids, attentionMask: mask, training }); // [B, P+N, H], adapters on
      return responsePositions(head.scoreAllTokens(hidden), promptLen, n); // [B, N]
    }),
    trainableVariables: () => new Map([...trainableVariables(rewardModel), ['value_head.weight', head.weight]]),
  };
}

/**
 * log π(token) of each response token under softmax(logits / temperature) — the distribution the
 * sampler draws from — and the entropy of that distribution. Used at rollout and in training alike.
 */
export function responseLogprobs(
  model: LlamaModel,
  ids: tf.Tensor2D, // [B, P+N] int32
  mask: tf.Tensor2D, // [B, P+N]
  promptLen: number,
  temperature: number,
  training: boolean,
): { logprobs: tf.Tensor2D; entropy: tf.Tensor2D } {
  return tf.tidy(() => {
    const [b, total] = ids.shape;
    const n = total - promptLen;
    const out = model.forward({ inputIds: ids, attentionMask: mask, training, logitsToKeep: n + 1 });
    const vocab = out.logits.shape[2];
    const logits = tf.div(tf.slice(out.logits, [0, 0, 0], [b, n, vocab]), temperature); // [B, N, V]
    const tokens = tf.slice(ids, [0, promptLen], [b, n]); // [B, N]
    const logp = tf.logSoftmax(logits, -1); // [B, N, V]
    // one-hot pick rather than gather: its gradient needs no scatter kernel
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.cast(tokens, 'int32'), vocab)), -1) as tf.Tensor2D; // [B, N]
    return { logprobs: picked, entropy: entropyFromLogits(logits) as tf.Tensor2D };
  });
}

/**
 * What the reward model reads: each row [left pad | prompt + response | right pad], plus `suffix`
 * right after a response that stopped at a turn-end token (`finished`). The suffix is what the
 * template writes after the turn end (chatml's newline), for a reward model that reads at the last
 * token of the full rendering (src/tokenizer/score-position.ts); empty for one that reads at the
 * turn end, where the rows are returned as they are.
 */
export function rewardInputs(
  ids: number[][], // [B, P+N]
  mask: number[][], // [B, P+N]
  finished: readonly boolean[],
  suffix: readonly number[],
  padId: number,
): { ids: number[][]; mask: number[][] } {
  if (suffix.length === 0) return { ids, mask };
  const out = { ids: [] as number[][], mask: [] as number[][] };
  ids.forEach((row, r) => {
    const m = mask[r]!;
    let end = m.length; // one past the last real token
    while (end > 0 && m[end - 1] === 0) end--;
    const add = finished[r] ? suffix : [];
    const pad = suffix.length - add.length + (m.length - end);
    out.ids.push([...row.slice(0, end), ...add, ...new Array<number>(pad).fill(padId)]);
    out.mask.push([...m.slice(0, end), ...add.map(() => 1), ...new Array<number>(pad).fill(0)]);
  });
  return out;
}

/**
 * The reward model's score of each full sequence, read at its last real token. [B] Always with any
 * adapters off: with ppo.critic: reward_model_lora the critic's adapters sit on this very model.
 */
export function sequenceScores(rewardModel: LlamaModel, ids: tf.Tensor2D, mask: tf.Tensor2D): Float32Array {
  const head = rewardModel.scoreHead;
  if (!head) throw new Error('sequenceScores: the reward model has no score head (score.weight)');
  const scores = withAdaptersDisabled(rewardModel, () =>
    tf.tidy(() => head.scoreAtLastToken(rewardModel.hiddenStates({ inputIds: ids, attentionMask: mask }).hidden, mask)));
  const out = scores.dataSync() as Float32Array;
  scores.dispose();
  return out;
}

export interface SamplingSettings {
  maxNewTokens: number;
  temperature: number;
  stopTokenIds: number[];
  padTokenId: number;
}

/** One rollout batch: everything PPO needs, as plain arrays. */
export interface Rollout {
  /** P: columns of left-padded prompt. */
  promptLen: number;
  /** [B, P+N] prompt + response ids. */
  ids: number[][];
  /** [B, P+N] 1 for real tokens. */
  attentionMask: number[][];
  /** [B, N] 1 for response tokens up to and including EOS. */
  responseMask: Rows;
  /** Whether each response ended with a stop token. */
  hasEos: boolean[];
  /** log-probs the sampler reported (KV-cached path), for checking against `logprobs`. [B, N] */
  samplerLogprobs: Rows;
  /** log π_old, from the training forward. [B, N] */
  logprobs: Rows;
  /** log π_ref (adapters disabled). [B, N] */
  refLogprobs: Rows;
  /** Critic values V_old. [B, N] */
  values: Rows;
  /** Raw reward-model scores. [B] */
  scores: number[];
}

export interface RolloutModels {
  policy: LlamaModel;
  critic: Critic;
  rewardModel: LlamaModel;
  /** Appended after a finished response before scoring ({@link rewardInputs}); none by default. */
  rewardSuffix?: readonly number[];
}

/** Sample responses to `prompts` (token ids) and record log-probs, values and scores. */
export function rollout(models: RolloutModels, prompts: number[][], s: SamplingSettings, rng: Rng): Rollout {
  const gen = generate(models.policy, prompts, {
    maxNewTokens: s.maxNewTokens,
    temperature: s.temperature,
    stopTokenIds: s.stopTokenIds,
    padTokenId: s.padTokenId,
    rng,
  });
  const promptLen = gen.promptIds[0]!.length;
  const ids = gen.promptIds.map((p, r) => [...p, ...gen.tokens[r]!]);
  const attentionMask = gen.promptMask.map((p, r) => [...p, ...gen.mask[r]!]);
  const responseMask = gen.mask;

  const idsT = tf.tensor2d(ids, undefined, 'int32');
  const maskT = tf.tensor2d(attentionMask, undefined, 'int32');
  try {
    const masked = (x: tf.Tensor2D): Rows => {
      const rows = x.arraySync();
      x.dispose();
      return applyMask(rows, responseMask);
    };
    const logprobs = masked(keepLogprobs(models.policy, idsT, maskT, promptLen, s.temperature));
    const refLogprobs = masked(withAdaptersDisabled(models.policy, () => keepLogprobs(models.policy, idsT, maskT, promptLen, s.temperature)));
    const values = masked(models.critic.values(idsT, maskT, promptLen, false));
    const suffix = models.rewardSuffix ?? [];
    let scores: number[];
    if (suffix.length === 0) scores = Array.from(sequenceScores(models.rewardModel, idsT, maskT));
    else {
      const read = rewardInputs(ids, attentionMask, gen.finished, suffix, s.padTokenId);
      const readIds = tf.tensor2d(read.ids, undefined, 'int32');
      const readMask = tf.tensor2d(read.mask, undefined, 'int32');
      try {
        scores = Array.from(sequenceScores(models.rewardModel, readIds, readMask));
      } finally {
        tf.dispose([readIds, readMask]);
      }
    }
    return {
      promptLen, ids, attentionMask, responseMask, hasEos: gen.finished, samplerLogprobs: gen.logprobs,
      logprobs, refLogprobs, values, scores,
    };
  } finally {
    tf.dispose([idsT, maskT]);
  }
}

/** Log-probs only (the entropy is dropped at once). */
function keepLogprobs(model: LlamaModel, ids: tf.Tensor2D, mask: tf.Tensor2D, promptLen: number, temperature: number): tf.Tensor2D {
  const { logprobs, entropy } = responseLogprobs(model, ids, mask, promptLen, temperature, false);
  entropy.dispose();
  return logprobs;
}
