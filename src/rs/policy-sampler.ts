/**
 * A `ReplySampler` backed by the policy: each prompt rendered with the chat template and repeated K
 * times, sampled in batches with the KV cache (src/generation), each reply decoded up to its
 * turn-end token.
 */
import type { Message } from '../data/schemas.js';
import type { Rng } from '../engine/rng.js';
import { generate } from '../generation/index.js';
import type { LlamaModel } from '../model/index.js';
import { renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
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
  const stopTokenIds = turnEndIds(tokenizer, opts.template);
  return (prompts: readonly Message[][], k: number, rng: Rng) => {
    // Row r is sample r mod k of prompt ⌊r / k⌋.
    const rows = prompts.flatMap((p) => {
      const ids = renderChatPrompt(tokenizer, p, opts.template);
      return Array.from({ length: k }, () => ids);
    });
    const replies: string[] = [];
    const finished: boolean[] = [];
    for (let start = 0; start < rows.length; start += opts.batchSize) {
      const out = generate(model, rows.slice(start, start + opts.batchSize), {
        maxNewTokens: opts.maxNewTokens,
        temperature: opts.temperature,
        topP: opts.topP,
        stopTokenIds,
        padTokenId: tokenizer.padId,
        rng,
      });
      out.tokens.forEach((row, r) => {
        const kept = row.filter((id, i) => out.mask[r]![i] === 1 && !stopTokenIds.includes(id));
        replies.push(tokenizer.decode(kept, { skipSpecialTokens: true }).trim());
        finished.push(out.finished[r]!);
      });
    }
    return { replies, finished };
  };
}
