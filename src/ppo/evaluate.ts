/**
 * Held-out evaluation of the policy: greedy answers to prompts the policy never trained on, scored
 * by the reward model (eval/reward_mean, raw scores) and, when given, by a gold judge.
 */
import * as tf from '@tensorflow/tfjs-core';
import { generate } from '../generation/index.js';
import type { LlamaModel } from '../model/llama.js';
import { rewardInputs, sequenceScores } from './rollout.js';

export interface EvalOptions {
  maxNewTokens: number;
  batchSize: number;
  stopTokenIds: number[];
  padTokenId: number;
  /** Appended after a finished answer before scoring (a reward model reading at its last token; see rewardInputs). */
  rewardSuffix?: readonly number[];
}

export interface EvalAnswers {
  /** Generated ids per prompt, up to and including the stop token. */
  responses: number[][];
  /** Reward-model score of each prompt + answer. */
  scores: number[];
}

/** Greedy answers and their reward-model scores. */
export function answerAndScore(policy: LlamaModel, rewardModel: LlamaModel, prompts: number[][], o: EvalOptions): EvalAnswers {
  const responses: number[][] = [];
  const scores: number[] = [];
  for (let start = 0; start < prompts.length; start += o.batchSize) {
    const gen = generate(policy, prompts.slice(start, start + o.batchSize), {
      maxNewTokens: o.maxNewTokens,
      temperature: 0,
      stopTokenIds: o.stopTokenIds,
      padTokenId: o.padTokenId,
    });
    const read = rewardInputs(
      gen.promptIds.map((p, r) => [...p, ...gen.tokens[r]!]),
      gen.promptMask.map((p, r) => [...p, ...gen.mask[r]!]),
      gen.finished, o.rewardSuffix ?? [], o.padTokenId,
    );
    const { ids, mask } = read;
    const idsT = tf.tensor2d(ids, undefined, 'int32');
    const maskT = tf.tensor2d(mask, undefined, 'int32');
    try {
      scores.push(...sequenceScores(rewardModel, idsT, maskT));
    } finally {
      tf.dispose([idsT, maskT]);
    }
    gen.tokens.forEach((row, r) => responses.push(row.filter((_, i) => gen.mask[r]![i] === 1)));
  }
  return { responses, scores };
}
