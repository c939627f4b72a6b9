/**
 * A `ReplySampler` backed by the policy: each prompt repeated K times (row r is sample r mod K of
 * prompt ⌊r / K⌋), sampled in batches with the KV cache through src/generation.
 */
import type { Message } from '../data/schemas.js';
import type { Rng } from '../engine/rng.js';
import { sampleChatReplies } from '../generation/chat.js';
import type { LlamaModel } from '../model/index.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import type { ReplySampler } from './sampling.js';

export interface PolicySamplerOptions {
  template: TemplateName;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** Rows per generate call. */
  batchSize: number;
}

export function policySampler(model: LlamaModel, tokenizer: Tokenizer, opts: PolicySamplerOptions): ReplySampler {
  return (prompts: readonly Message[][], k: number, rng: Rng) => {
    const rows = prompts.flatMap((p) => Array.from({ length: k }, () => p));
    return sampleChatReplies(model, tokenizer, rows, { ...opts, rng });
  };
}
