/** What rejection sampling samples from and with: the input policy folder and the prompts. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { samplingPrompts } from '../data/prompts.js';
import type { Message } from '../data/schemas.js';
import { UserError } from '../errors.js';
import { mergeAdapterFolder } from '../lora/merge.js';
import { resolveModelPath } from '../model/index.js';
import { resolveDataPath } from '../paths.js';
import { renderChatPrompt, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { writeFolderAtomic } from '../training/run.js';
import type { RsConfig } from './config.js';

/** Inside the run folder: model.path with model.adapter merged in, when an adapter is given. */
export const INPUT_MODEL_DIR = 'input_model';

/** The policy as one HF folder: model.path, or model.path with model.adapter merged into input_model/. */
export function prepareInputModel(cfg: RsConfig, log: (m: string) => void): { modelDir: string; tokenizerDir: string } {
  const base = resolve(resolveModelPath(resolveDataPath(cfg.model.path)));
  if (!existsSync(join(base, 'config.json'))) {
    throw new UserError(`model.path: ${cfg.model.path} has no config.json (an HF model folder is needed, e.g. the SFT stage's final/merged)`);
  }
  const tokenizerDir = resolve(resolveModelPath(resolveDataPath(cfg.tokenizer.path ?? cfg.model.path)));
  if (cfg.model.adapter === null) return { modelDir: base, tokenizerDir };
  const adapter = resolve(resolveDataPath(cfg.model.adapter));
  const merged = resolve(cfg.output_dir, INPUT_MODEL_DIR);
  // Written under a temporary name and renamed: a kill never leaves a half-merged policy.
  writeFolderAtomic(merged, (tmp) => void mergeAdapterFolder(base, adapter, tmp));
  log(`rs: merged adapter ${adapter} into ${merged}`);
  return { modelDir: merged, tokenizerDir: cfg.tokenizer.path === null ? merged : tokenizerDir };
}

/** The prompts to sample: the file's, minus excluded ones, minus too-long ones, the first max_prompts. */
export async function promptsToSample(
  cfg: RsConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (m: string) => void,
): Promise<Array<{ key: string; prompt: Message[] }>> {
  const distinct = await samplingPrompts(resolveDataPath(cfg.data.prompts), cfg.data.exclude.map(resolveDataPath), (m) => log(`rs: ${m}`));
  const fitting = distinct.filter((p) => renderChatPrompt(tokenizer, p.prompt, template).length <= cfg.data.max_prompt_tokens);
  if (fitting.length < distinct.length) {
    log(`rs: ${distinct.length - fitting.length} prompts are longer than data.max_prompt_tokens=${cfg.data.max_prompt_tokens}; skipped`);
  }
  const chosen = fitting.slice(0, cfg.data.max_prompts ?? undefined);
  if (chosen.length === 0) throw new UserError(`data.prompts: ${cfg.data.prompts} has no prompt left to sample (after data.exclude and data.max_prompt_tokens)`);
  return chosen;
}

/** What the samples depend on besides K, batch size, seed and the prompt list. */
export function samplingSettings(cfg: RsConfig, modelDir: string, rewardDir: string, template: TemplateName): Record<string, unknown> {
  return {
    policy: modelDir,
    reward_model: rewardDir,
    template,
    temperature: cfg.rs.temperature,
    top_p: cfg.rs.top_p,
    max_new_tokens: cfg.rs.max_new_tokens,
  };
}
