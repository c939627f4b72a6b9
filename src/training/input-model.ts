/**
 * The chat model a fine-tuning stage samples from and trains (rejection sampling, GAtt): model.path
 * as it is, or model.path with model.adapter merged into `<output_dir>/input_model/`.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { mergeAdapterFolder } from '../lora/merge.js';
import { resolveModelPath } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { writeFolderAtomic } from './run.js';

/** Inside the run folder: model.path with model.adapter merged in, when an adapter is given. */
export const INPUT_MODEL_DIR = 'input_model';

export interface InputModelSettings {
  model: { path: string; adapter: string | null };
  tokenizer: { path: string | null };
  output_dir: string;
}

/** The model as one HF folder, and its tokenizer folder (the merged folder carries the tokenizer files). */
export function prepareInputModel(cfg: InputModelSettings, opts: { label: string; log: (m: string) => void }): { modelDir: string; tokenizerDir: string } {
  const base = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  if (!existsSync(join(base, 'config.json'))) {
    throw new UserError(`model.path: ${cfg.model.path} has no config.json (an HF model folder is needed, e.g. the SFT stage's final/merged)`);
  }
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  if (cfg.model.adapter === null) return { modelDir: base, tokenizerDir };
  const adapter = resolve(resolveDataPath(cfg.model.adapter));
  const merged = resolve(cfg.output_dir, INPUT_MODEL_DIR);
  // Written under a temporary name and renamed: a kill never leaves a half-merged model.
  writeFolderAtomic(merged, (tmp) => void mergeAdapterFolder(base, adapter, tmp));
  opts.log(`${opts.label}: merged adapter ${adapter} into ${merged}`);
  return { modelDir: merged, tokenizerDir: cfg.tokenizer.path === null ? merged : tokenizerDir };
}
