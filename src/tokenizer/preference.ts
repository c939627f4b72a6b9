/**
 * One side of a preference pair as labelled tokens: the prompt, then that answer (chat-templated
 * when the row holds messages, `prompt + answer` + EOS when it holds text). Labels mark the answer
 * tokens (the assistant reply and the template's turn-end token); the prompt is −100. The reward
 * stage reads the ids, DPO also the labels (log-probs over the reply only).
 */
import type { ChatMessage } from './templates.js';
import { IGNORE_INDEX, tokenizePromptCompletion, type TokenizedExample } from './dialogue.js';
import type { TemplateName } from './templates.js';
import type { Tokenizer } from './types.js';

export function tokenizePreferenceExample(
  tokenizer: Tokenizer,
  prompt: string | readonly ChatMessage[] | undefined,
  answer: string | readonly ChatMessage[],
  template: TemplateName,
  onWarning?: (message: string) => void,
): TokenizedExample {
  const before = prompt ?? (typeof answer === 'string' ? '' : []);
  if (typeof before === 'string' && before === '' && typeof answer === 'string') {
    // No prompt: BOS + answer + EOS (tokenizePromptCompletion needs a non-empty span to label).
    const leading = tokenizer.encode('', { addSpecialTokens: true }).filter((id) => id !== tokenizer.eosId);
    const body = [...tokenizer.encode(answer, { addSpecialTokens: false }), tokenizer.eosId];
    return { inputIds: [...leading, ...body], labels: [...leading.map(() => IGNORE_INDEX), ...body] };
  }
  return tokenizePromptCompletion(tokenizer, before, answer, { template, ...(onWarning ? { onWarning } : {}) });
}
