/**
 * Tokenizers: Hugging Face tokenizer.json loading, a byte-level BPE trainer, chat templates and
 * label masks. Everything else imports from here.
 */
export type { Tokenizer } from './types.js';
export { HfTokenizer, loadTokenizer, type TokenizerConfigJson } from './hfTokenizer.js';
export {
  IGNORE_INDEX,
  tokenizeDialogue,
  tokenizePromptCompletion,
  renderChatPrompt,
  renderChatText,
  turnEndIds,
  type LabelStrategy,
  type TokenizedExample,
  type DialogueOptions,
} from './dialogue.js';
export {
  CHATML_CHAT_TEMPLATE,
  LLAMA2_CHAT_TEMPLATE,
  type ChatMessage,
  type TemplateName,
  type BuiltinTemplateName,
} from './templates.js';
export { pickTemplate } from './choose-template.js';
export { tokenizePreferenceExample } from './preference.js';
export { READ_AT, scoredIds, turnEndSuffix, type ReadAt } from './score-position.js';
export { trainTokenizer, MIN_VOCAB_SIZE, type TrainTokenizerResult } from './train.js';
export { TRAINED_SPECIAL_TOKENS } from './trainedFiles.js';
export { TOKENIZER_FILES, copyTokenizerFiles } from './files.js';
