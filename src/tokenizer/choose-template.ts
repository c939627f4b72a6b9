import type { TemplateName } from './templates.js';
import type { Tokenizer } from './types.js';

/** `auto` → the tokenizer's own chat template when it has one, else llama2. */
export function pickTemplate(choice: TemplateName | 'auto', tokenizer: Tokenizer): TemplateName {
  if (choice !== 'auto') return choice;
  return tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2';
}
