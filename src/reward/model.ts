/**
 * The reward model: a Llama backbone plus a scalar head (`score.weight` [1, hidden]) read at each
 * sequence's last real token — LlamaForSequenceClassification with num_labels = 1.
 *
 * "Last real token" comes from the attention mask, never from comparing ids with the pad id, so
 * the score is the same under left padding, right padding or none (and a pad id equal to EOS
 * cannot hide the EOS the score is read at).
 */
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { ADAPTER_CONFIG_FILE, loadAdapter, readAdapterConfig, unloadLora } from '../lora/index.js';
import { sequenceClassificationArchitecture, attachScoreHead, loadHfModel, saveHfModel, type LlamaModel } from '../model/index.js';
import { writeFolderAtomic } from '../training/run.js';
import { sequenceRewards } from '../model/score.js';

import { REWARD_STATS_FILE, type RewardStats } from '../model/io/reward-stats.js';
import { writeRewardReadAt } from '../model/io/reward-read.js';
import type { ReadAt } from '../tokenizer/index.js';
import { REWARD_INFO_FILE, type RewardInfo } from '../model/io/reward-kind.js';

export { REWARD_STATS_FILE, readRewardStats, type RewardStats } from '../model/io/reward-stats.js';
export { sequenceRewards } from '../model/score.js';
/** Tokenizer files a model folder may hold; copied next to the saved reward model. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model'];


/**
 * Chosen and rejected rewards from one forward pass: the two [B, T] batches (same T) are stacked
 * into [2B, T], so both sides see the same weights, dropout draws aside, in one graph.
 */
export function pairRewards(
  model: LlamaModel,
  batch: { chosenIds: tf.Tensor2D; chosenMask: tf.Tensor2D; rejectedIds: tf.Tensor2D; rejectedMask: tf.Tensor2D },
  opts: { training?: boolean } = {},
): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  const b = batch.chosenIds.shape[0];
  const [chosen, rejected] = tf.tidy(() => {
    const ids = tf.concat([batch.chosenIds, batch.rejectedIds], 0) as tf.Tensor2D; // [2B, T]
    const mask = tf.concat([batch.chosenMask, batch.rejectedMask], 0) as tf.Tensor2D; // [2B, T]
    const rewards = sequenceRewards(model, ids, mask, opts); // [2B]
    return tf.split(rewards, [b, b]) as [tf.Tensor1D, tf.Tensor1D];
  });
  return { chosen: chosen!, rejected: rejected! };
}

/**
 * Where the backbone comes from: `path` is an HF model folder (an adapter may be given beside it),
 * or a PEFT adapter folder (a LoRA SFT output), whose `base_model_name_or_path` is the model it
 * is merged into.
 */
export function resolveBackbone(path: string, adapter: string | null): { modelDir: string; adapterDir: string | null } {
  if (existsSync(join(path, 'config.json'))) return { modelDir: path, adapterDir: adapter };
  if (existsSync(join(path, ADAPTER_CONFIG_FILE))) {
    if (adapter !== null) throw new UserError(`model.path ${path} is itself a LoRA adapter folder; leave model.adapter null or point model.path at the base model`);
    const base = readAdapterConfig(path).base_model_name_or_path;
    if (base === null || !existsSync(join(base, 'config.json'))) {
      throw new UserError(
        `model.path ${path} is a LoRA adapter whose base_model_name_or_path (${String(base)}) is not a model folder; ` +
          'set model.path to the base model and model.adapter to this folder',
      );
    }
    return { modelDir: base, adapterDir: path };
  }
  throw new UserError(`model.path ${path}: no config.json or ${ADAPTER_CONFIG_FILE} there (run the SFT or pretrain stage first, or point it at an HF model folder)`);
}

/**
 * Load the backbone for a reward model from an HF folder. An optional LoRA adapter (a LoRA SFT
 * output) is merged into the weights first. A folder that already has a `score` head (a reward
 * model) keeps it; otherwise a fresh head is drawn from `rng` and the LM head is dropped.
 */
export function loadRewardBackbone(modelDir: string, rng: Rng, opts: { adapterDir?: string | null } = {}): LlamaModel {
  const model = loadHfModel(modelDir);
  try {
    if (opts.adapterDir) {
      loadAdapter(model, opts.adapterDir);
      unloadLora(model, { merge: true });
    }
    if (!model.scoreHead) attachScoreHead(model, rng, { dropLmHead: true });
    markSequenceClassifier(model);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Make the config read as HF's LlamaForSequenceClassification with one label. HF finds the
 * scored token through `pad_token_id`, so it must be set: the tokenizer's pad id is passed in
 * where the config lacks one.
 */
export function markSequenceClassifier(model: LlamaModel, padId?: number): void {
  const cfg = model.config;
  cfg.architectures = [sequenceClassificationArchitecture(cfg)];
  cfg.num_labels = 1;
  cfg.id2label = { '0': 'LABEL_0' };
  cfg.label2id = { LABEL_0: 0 };
  cfg.problem_type = 'regression';
  if ((cfg.pad_token_id === null || cfg.pad_token_id === undefined) && padId !== undefined) cfg.pad_token_id = padId;
}

/**
 * Save a reward model folder: config.json + model.safetensors (backbone + `score.weight`),
 * `reward_stats.json`, and the tokenizer files found in `tokenizerDir`. LoRA adapters must be
 * merged (or unloaded) first: only `model.params` are written.
 */
export function saveRewardModel(
  model: LlamaModel,
  dir: string,
  opts: {
    stats: RewardStats;
    tokenizerDir: string;
    padId: number;
    /** Recorded in reward_read.json (none: the folder reads at its last token). */
    readAt?: ReadAt;
    /** What the model scores (reward_model.json): its kind and the pairs of each training file. */
    info?: RewardInfo;
  },
): void {
  if (model.adapters.size > 0) throw new Error('saveRewardModel: merge the LoRA adapters first (unloadLora with merge)');
  markSequenceClassifier(model, opts.padId);
  // Written into a temporary sibling and renamed into place: never a half-written model.
  writeFolderAtomic(dir, (tmp) => {
    saveHfModel(model, tmp);
    writeFileSync(join(tmp, REWARD_STATS_FILE), JSON.stringify(opts.stats, null, 2) + '\n');
    if (opts.readAt) writeRewardReadAt(tmp, opts.readAt);
    if (opts.info) writeFileSync(join(tmp, REWARD_INFO_FILE), JSON.stringify(opts.info, null, 2) + '\n');
    for (const f of TOKENIZER_FILES) {
      const src = join(opts.tokenizerDir, f);
      if (existsSync(src)) copyFileSync(src, join(tmp, f));
    }
  });
}

