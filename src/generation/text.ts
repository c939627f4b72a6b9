/**
 * Text in, text out: encode prompts (plain, or as a one-turn chat through a template), generate,
 * decode. What `rlhf generate` prints.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { eosTokenIds } from '../model/config.js';
import type { LlamaModel } from '../model/llama.js';
import { renderChatPrompt, turnEndIds, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { generate } from './generate.js';

export interface TextGenerationOptions {
  maxNewTokens: number;
  minNewTokens?: number;
  temperature: number;
  topK: number;
  topP: number;
  rng: Rng;
  /** Wrap each prompt as a user turn with this chat template (and stop at its turn-end tokens). */
  chatTemplate?: TemplateName;
}

export interface TextCompletion {
  prompt: string;
  completion: string;
  prompt_ids: number[];
  /** Generated ids up to and including the stop token. */
  completion_ids: number[];
}

export function generateText(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompts: string[],
  opts: TextGenerationOptions,
): TextCompletion[] {
  const promptIds = prompts.map((p) =>
    opts.chatTemplate ? renderChatPrompt(tokenizer, [{ role: 'user', content: p }], opts.chatTemplate) : tokenizer.encode(p),
  );
  promptIds.forEach((ids, i) => {
    if (ids.length === 0) throw new UserError(`prompt ${i + 1} encodes to no tokens`);
    const tooBig = ids.find((id) => id >= model.config.vocab_size);
    if (tooBig !== undefined) {
      throw new UserError(`prompt ${i + 1}: token id ${tooBig} is outside the model's vocab_size ${model.config.vocab_size} (tokenizer and model do not match)`);
    }
  });
  const stop = new Set([...eosTokenIds(model.config), tokenizer.eosId]);
  if (opts.chatTemplate) for (const id of turnEndIds(tokenizer, opts.chatTemplate)) stop.add(id);
  const out = generate(model, promptIds, {
    maxNewTokens: opts.maxNewTokens,
    minNewTokens: opts.minNewTokens ?? 0,
    temperature: opts.temperature,
    topK: opts.topK,
    topP: opts.topP,
    stopTokenIds: [...stop],
    padTokenId: tokenizer.padId,
    rng: opts.rng,
  });
  return prompts.map((prompt, r) => {
    const ids = out.tokens[r]!.filter((_, i) => out.mask[r]![i] === 1);
    return { prompt, completion: tokenizer.decode(ids, { skipSpecialTokens: true }), prompt_ids: promptIds[r]!, completion_ids: ids };
  });
}

/** Sampling defaults from the model folder's generation_config.json (HF: greedy unless do_sample). */
export function generationDefaults(dir: string): { temperature: number; topK: number; topP: number; maxNewTokens: number } {
  const defaults = { temperature: 0, topK: 0, topP: 1, maxNewTokens: 64 };
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path)) return defaults;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  const num = (k: string, d: number) => (typeof json[k] === 'number' ? (json[k] as number) : d);
  return {
    temperature: json.do_sample === true ? num('temperature', 1) : 0,
    topK: json.do_sample === true ? num('top_k', 50) : 0, // HF's default top_k is 50
    topP: json.do_sample === true ? num('top_p', 1) : 1,
    maxNewTokens: num('max_new_tokens', defaults.maxNewTokens),
  };
}
