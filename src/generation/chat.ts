/**
 * Replies to chat prompts: each prompt rendered with the chat template, sampled in batches with the
 * KV cache, each reply decoded up to its turn-end token. Shared by the tools and stages that sample
 * from a chat model (rejection sampling, fresh preference pairs).
 */
import type { Message } from '../data/schemas.js';
import type { Rng } from '../engine/rng.js';
import type { LlamaModel } from '../model/llama.js';
import { renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { generate } from './generate.js';

export interface ChatSamplingOptions {
  template: TemplateName;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  /** Prompts per generate call. */
  batchSize: number;
  /** Needed unless temperature is 0; drawn from in prompt order, batch by batch. */
  rng?: Rng;
}

/** One reply per prompt (in order), and whether it ended with a turn-end token (false: it ran out of tokens). */
export function sampleChatReplies(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompts: readonly (readonly Message[])[],
  opts: ChatSamplingOptions,
): { replies: string[]; finished: boolean[] } {
  const stopTokenIds = turnEndIds(tokenizer, opts.template);
  const ids = prompts.map((p) => renderChatPrompt(tokenizer, p, opts.template));
  const replies: string[] = [];
  const finished: boolean[] = [];
  for (let start = 0; start < ids.length; start += opts.batchSize) {
    const out = generate(model, ids.slice(start, start + opts.batchSize), {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
      stopTokenIds,
      padTokenId: tokenizer.padId,
      ...(opts.rng ? { rng: opts.rng } : {}),
    });
    replies.push(...replyTexts(tokenizer, out, stopTokenIds));
    finished.push(...out.finished);
  }
  return { replies, finished };
}

/** The text of each generated reply: its own tokens (mask 1), turn-end tokens dropped, special tokens skipped. */
export function replyTexts(
  tokenizer: Pick<Tokenizer, 'decode'>,
  out: { tokens: number[][]; mask: number[][] },
  stopTokenIds: readonly number[],
): string[] {
  return out.tokens.map((row, r) => {
    const kept = row.filter((id, i) => out.mask[r]![i] === 1 && !stopTokenIds.includes(id));
    return tokenizer.decode(kept, { skipSpecialTokens: true }).trim();
  });
}
