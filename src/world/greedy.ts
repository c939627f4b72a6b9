import { generate } from '../generation/index.js';
import type { LlamaModel } from '../model/index.js';
import { renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import type { ChatMessage } from './generate.js';

/**
 * A greedy chat generator for `evaluateWithGenerator`: renders each prompt with the chat template,
 * decodes greedily (temperature 0) in batches until a turn-end token, and returns the reply text.
 */
export interface GreedyChatOptions {
  template: TemplateName;
  maxNewTokens: number;
  batchSize: number;
}

export function greedyChatGenerator(
  model: LlamaModel,
  tokenizer: Tokenizer,
  options: GreedyChatOptions,
): (prompts: ChatMessage[][]) => Promise<string[]> {
  const stopTokenIds = turnEndIds(tokenizer, options.template);
  return async (prompts) => {
    const replies: string[] = [];
    for (let start = 0; start < prompts.length; start += options.batchSize) {
      const batch = prompts.slice(start, start + options.batchSize).map((p) => renderChatPrompt(tokenizer, p, options.template));
      const out = generate(model, batch, {
        maxNewTokens: options.maxNewTokens,
        temperature: 0,
        stopTokenIds,
        padTokenId: tokenizer.padId,
      });
      out.tokens.forEach((row, r) => {
        const kept = row.filter((id, i) => out.mask[r]![i] === 1 && !stopTokenIds.includes(id));
        replies.push(tokenizer.decode(kept, { skipSpecialTokens: true }).trim());
      });
    }
    return replies;
  };
}
