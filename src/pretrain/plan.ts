/** What a pretraining run will be: the model's shape, how many optimizer steps, how much disk. */
import type { LlamaConfig } from '../model/config.js';
import { llamaConfig } from '../model/config.js';
import { llamaParamShapes } from '../model/names.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { stepsOfRun } from '../training/schedule.js';
import { runDiskBytes } from '../training/run.js';
import type { PretrainConfig } from './config.js';

/** The LlamaConfig of the model to train: the config's shape, the tokenizer's vocabulary and special ids. */
export function modelConfig(cfg: PretrainConfig, tokenizer: Pick<Tokenizer, 'vocabSize' | 'bosId' | 'eosId' | 'padId'>): LlamaConfig {
  const m = cfg.model;
  // A tokenizer without its own pad token reuses EOS or BOS; that id must not be declared padding
  // (initialisation zeroes the padding row of the embedding).
  const hasOwnPad = tokenizer.padId !== tokenizer.eosId && tokenizer.padId !== tokenizer.bosId;
  return llamaConfig({
    vocab_size: tokenizer.vocabSize,
    hidden_size: m.hidden_size,
    intermediate_size: m.intermediate_size,
    num_hidden_layers: m.num_hidden_layers,
    num_attention_heads: m.num_attention_heads,
    num_key_value_heads: m.num_key_value_heads ?? m.num_attention_heads,
    max_position_embeddings: m.max_position_embeddings,
    rope_theta: m.rope_theta,
    rms_norm_eps: m.rms_norm_eps,
    tie_word_embeddings: m.tie_word_embeddings,
    initializer_range: m.initializer_range,
    bos_token_id: tokenizer.bosId,
    eos_token_id: tokenizer.eosId,
    pad_token_id: hasOwnPad ? tokenizer.padId : null,
  });
}

/** Optimizer steps: from the token budget, else the epochs, else train.steps. */
export function plannedSteps(cfg: PretrainConfig, batchesPerEpoch: number): number {
  const accum = cfg.optim.grad_accum;
  if (cfg.data.token_budget !== null) {
    return Math.max(1, Math.ceil(cfg.data.token_budget / (cfg.train.batch_size * accum * cfg.data.seq_len)));
  }
  return stepsOfRun(cfg.train, batchesPerEpoch, accum);
}

/**
 * Disk the run needs: each kept checkpoint holds the weights and two optimizer moments (float32),
 * plus the final model; doubled for the temporary copies written before a rename.
 */
export function estimateDiskBytes(cfg: PretrainConfig): number {
  const shape = modelConfig(cfg, { vocabSize: cfg.tokenizer.vocab_size, bosId: 1, eosId: 2, padId: 0 });
  let params = 0;
  for (const s of llamaParamShapes(shape, { lmHead: !shape.tie_word_embeddings, score: false }).values()) {
    params += s.reduce((a, b) => a * b, 1);
  }
  return runDiskBytes({ trainable: params, savedWeights: params, keepLast: cfg.checkpoint.keep_last ?? 10 });
}
