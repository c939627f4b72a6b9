/**
 * A `ReplySampler` backed by a chat model: renders each dialogue with the chat template (dropping
 * the oldest exchanges when it would not fit the context), samples in batches with the KV cache,
 * and decodes the reply up to the turn-end token. With `bestOf`, K candidates are drawn per prompt
 * and the one a scorer (the reward model) ranks highest is kept — the analogue of Llama 2's
 * rejection sampling.
 */
import type { Rng } from '../engine/rng.js';
import { generate } from '../generation/index.js';
import type { LlamaModel } from '../model/index.js';
import { renderChatPrompt, turnEndIds, type ChatMessage, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { replyTexts } from '../generation/chat.js';
import { trimHistory } from './history.js';
import type { ReplySampler } from './synthesize.js';

/** Scores replies to prompts (higher is better), e.g. a reward model. */
export type ReplyScorer = (prompts: ChatMessage[][], replies: string[]) => Promise<number[]>;

export interface ModelSamplerOptions {
  template: TemplateName;
  maxNewTokens: number;
  /** 0 = greedy (then `rng` is not needed). */
  temperature: number;
  topP?: number;
  topK?: number;
  batchSize: number;
  rng?: Rng;
  /** Longest prompt in tokens; default: max_position_embeddings − maxNewTokens. */
  maxPromptTokens?: number;
  /** Keep the best of `k` sampled candidates by `score`. */
  bestOf?: { k: number; score: ReplyScorer };
}

export function modelReplySampler(model: LlamaModel, tokenizer: Tokenizer, opts: ModelSamplerOptions): ReplySampler {
  const stopTokenIds = turnEndIds(tokenizer, opts.template);
  const maxPromptTokens = opts.maxPromptTokens ?? model.config.max_position_embeddings - opts.maxNewTokens;
  const encode = (messages: readonly ChatMessage[]) => renderChatPrompt(tokenizer, messages, opts.template);

  const sampleOnce = (prompts: ChatMessage[][]): string[] => {
    const replies: string[] = [];
    for (let start = 0; start < prompts.length; start += opts.batchSize) {
      const batch = prompts.slice(start, start + opts.batchSize).map((p) => {
        const fitted = trimHistory(p, (m) => encode(m).length, maxPromptTokens).messages;
        return encode(fitted);
      });
      const out = generate(model, batch, {
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
        ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
        stopTokenIds,
        padTokenId: tokenizer.padId,
        ...(opts.rng ? { rng: opts.rng } : {}),
      });
      replies.push(...replyTexts(tokenizer, out, stopTokenIds));
    }
    return replies;
  };

  return async (prompts) => {
    if (!opts.bestOf || opts.bestOf.k <= 1) return sampleOnce(prompts);
    const { k, score } = opts.bestOf;
    // Candidates j = 0..k-1 of prompt i sit at j * n + i, so each batch mixes prompts as without best-of.
    const repeated = Array.from({ length: k }, () => prompts).flat();
    const candidates = sampleOnce(repeated);
    const scores = await score(repeated, candidates);
    return prompts.map((_, i) => {
      let best = i;
      for (let j = 1; j < k; j++) if (scores[j * prompts.length + i]! > scores[best]!) best = j * prompts.length + i;
      return candidates[best]!;
    });
  };
}
