import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';

/** The files of an HF tokenizer that a saved model folder carries (whichever of them exist). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model'] as const;

/** Copy the tokenizer files present in `from` into `to` (made if missing), so a saved model folder is self-contained. */
export function copyTokenizerFiles(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of TOKENIZER_FILES) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
}

/** Refuse a tokenizer with ids past the model's embedding table (they would index out of it). */
export function checkTokenizerFits(tokenizer: { vocabSize: number }, tokenizerDir: string, model: { config: { vocab_size: number } }, modelDir: string): void {
  if (tokenizer.vocabSize <= model.config.vocab_size) return;
  throw new UserError(`tokenizer ${tokenizerDir} has ${tokenizer.vocabSize} tokens but model ${modelDir} only ${model.config.vocab_size} embeddings`);
}
