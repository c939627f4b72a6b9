/** What rejection sampling samples: the prompts, and the settings the samples depend on. */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { samplingPrompts } from '../data/prompts.js';
import type { Message } from '../data/schemas.js';
import { UserError } from '../errors.js';
import { resolveDataPath } from '../paths.js';
import { renderChatPrompt, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import type { RsConfig } from './config.js';

/** The prompts to sample: the file's, minus excluded ones, minus too-long ones, the first max_prompts. */
export async function promptsToSample(
  cfg: RsConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (m: string) => void,
): Promise<Array<{ key: string; prompt: Message[]; isSafety: boolean }>> {
  const distinct = await samplingPrompts(resolveDataPath(cfg.data.prompts), cfg.data.exclude.map(resolveDataPath), (m) => log(`rs: ${m}`));
  const fitting = distinct.filter((p) => renderChatPrompt(tokenizer, p.prompt, template).length <= cfg.data.max_prompt_tokens);
  if (fitting.length < distinct.length) {
    log(`rs: ${distinct.length - fitting.length} prompts are longer than data.max_prompt_tokens=${cfg.data.max_prompt_tokens}; skipped`);
  }
  const chosen = fitting.slice(0, cfg.data.max_prompts ?? undefined);
  if (chosen.length === 0) throw new UserError(`data.prompts: ${cfg.data.prompts} has no prompt left to sample (after data.exclude and data.max_prompt_tokens)`);
  return chosen;
}

/**
 * What the samples depend on besides K, batch size, seed and the prompt list. The models count by
 * content, not only by path: the pipeline retrains a round's policy and reward model in the same
 * folders, and samples drawn and scored by the previous ones must not be reused.
 */
export function samplingSettings(cfg: RsConfig, modelDir: string, rewardDir: string, template: TemplateName, safetyDir: string | null = null): Record<string, unknown> {
  // Context distillation's settings only when it is on: samples drawn without it stay valid.
  const cd = safetyDir === null ? {} : { context_distillation: { ...cfg.context_distillation, reward_model: safetyDir, reward_model_sha256: folderDigest(safetyDir) } };
  return {
    ...cd,
    policy: modelDir,
    policy_sha256: folderDigest(modelDir),
    reward_model: rewardDir,
    reward_model_sha256: folderDigest(rewardDir),
    template,
    temperature: cfg.rs.temperature,
    top_p: cfg.rs.top_p,
    max_new_tokens: cfg.rs.max_new_tokens,
  };
}

/** sha256 over a model folder's top-level files (names and bytes, in name order): weights, config, tokenizer, read position. */
export function folderDigest(dir: string): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    hash.update(`${name}\0`).update(readFileSync(path)).update('\0');
  }
  return hash.digest('hex');
}
