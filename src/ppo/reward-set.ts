/**
 * PPO against a named set of reward models (Llama 2 §3.2.3): `model.reward_model` is one folder
 * (today's single model) or `{helpfulness, safety}`, and `rewards.combine` says how their scores
 * become the one PPO optimises (`single`: the one model; `llama2`: the piecewise rule of
 * combine-rewards.ts). The helpfulness model is the rollout's reward model (and the value model's
 * start); the safety model is scored here, on the same sequences.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import { readRewardInfo, type RewardKind } from '../model/io/reward-kind.js';
import type { LlamaModel } from '../model/llama.js';
import { combineLlama2, type CombineRule } from './combine-rewards.js';
import { processScores, type RewardStats } from './rewards.js';
import { sequenceScores } from './rollout.js';

export type RewardModelSetting = string | { helpfulness: string; safety: string };

export interface RewardModelPaths {
  /** The rollout's reward model: the single model, or the helpfulness one of a set. */
  primary: string;
  /** The safety model of a set; null for a single model. */
  safety: string | null;
}

/** Which folders to load, after checking the setting against `rewards.combine`. */
export function rewardModelPaths(setting: RewardModelSetting, combine: CombineRule): RewardModelPaths {
  if (typeof setting === 'string') {
    if (combine === 'llama2') {
      throw new UserError('rewards.combine: llama2 needs two reward models; set model.reward_model to {helpfulness: FOLDER, safety: FOLDER}');
    }
    return { primary: setting, safety: null };
  }
  if (combine === 'single') {
    throw new UserError('rewards.combine: single scores with one reward model, but model.reward_model names two (helpfulness, safety); set rewards.combine=llama2');
  }
  return { primary: setting.helpfulness, safety: setting.safety };
}

/**
 * A reward model whose reward_model.json says it scores something else than its slot is an error
 * (a model without the file — trained before it existed — is taken at its word).
 */
export function checkRewardKinds(paths: RewardModelPaths, log: (m: string) => void = () => undefined): void {
  if (paths.safety === null) return;
  const slots: Array<[RewardKind, string]> = [['helpfulness', paths.primary], ['safety', paths.safety]];
  for (const [slot, dir] of slots) {
    const info = readRewardInfo(dir);
    if (info === null) log(`ppo: ${dir} has no reward_model.json; taken as the ${slot} reward model`);
    else if (info.kind !== slot) throw new UserError(`model.reward_model.${slot}: ${dir} is a ${info.kind} reward model (its reward_model.json)`);
  }
}

export interface CombineScoresArgs {
  helpfulRaw: readonly number[];
  safetyRaw: readonly number[];
  isSafety: readonly boolean[];
  hasEos: readonly boolean[];
  helpfulStats: RewardStats | null;
  safetyStats: RewardStats | null;
  threshold: number;
  clip: number | null;
  missingEosPenalty: number | null;
}

export interface CombinedBatch {
  /** What PPO optimises, one per sequence. [batch] */
  scores: number[];
  metrics: Record<string, number>;
}

/**
 * Each model's raw score normalised with its own statistics → Llama 2's rule (σ, select, logit,
 * whiten over the batch) → clip → missing-EOS penalty (last, so clipping cannot swallow it).
 */
export function combineScores(a: CombineScoresArgs): CombinedBatch {
  const noEos = a.hasEos.map(() => true);
  const helpful = processScores([...a.helpfulRaw], noEos, { normalize: a.helpfulStats });
  const safety = processScores([...a.safetyRaw], noEos, { normalize: a.safetyStats });
  const combined = combineLlama2(helpful, safety, a.isSafety, a.threshold);
  const scores = processScores(combined.scores, [...a.hasEos], { clip: a.clip, missingEosPenalty: a.missingEosPenalty });
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  return {
    scores,
    metrics: {
      'objective/scores_helpfulness': mean(helpful),
      'objective/scores_safety': mean(safety),
      // R_c in sigmoid space, before LOGIT and WHITEN (the whitened score has mean 0 by construction)
      'objective/scores_combined_sigmoid': mean(combined.combined),
      'objective/combined_from_safety': mean(combined.fromSafety.map(Number)),
      'objective/safety_prompts': mean(a.isSafety.map(Number)),
    },
  };
}

/** Scores a rollout batch with the set: what the PPO loop calls in place of processScores. */
export type RolloutScorer = (
  ro: { ids: number[][]; attentionMask: number[][]; hasEos: boolean[]; scores: number[] },
  promptIndices: readonly number[],
) => CombinedBatch;

/** Llama 2's combined reward over a rollout: `ro.scores` are the helpfulness model's raw scores. */
export function llama2Scorer(a: {
  safetyModel: LlamaModel;
  isSafety: readonly boolean[];
  helpfulStats: RewardStats | null;
  safetyStats: RewardStats | null;
  threshold: number;
  clip: number | null;
  missingEosPenalty: number | null;
}): RolloutScorer {
  return (ro, promptIndices) => {
    const ids = tf.tensor2d(ro.ids, undefined, 'int32');
    const mask = tf.tensor2d(ro.attentionMask, undefined, 'int32');
    let safetyRaw: number[];
    try {
      safetyRaw = Array.from(sequenceScores(a.safetyModel, ids, mask));
    } finally {
      tf.dispose([ids, mask]);
    }
    return combineScores({
      helpfulRaw: ro.scores, safetyRaw, isSafety: promptIndices.map((i) => a.isSafety[i]!), hasEos: ro.hasEos,
      helpfulStats: a.helpfulStats, safetyStats: a.safetyStats, threshold: a.threshold, clip: a.clip, missingEosPenalty: a.missingEosPenalty,
    });
  };
}
