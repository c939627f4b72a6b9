/**
 * Prompt files for sampling (rejection sampling, fresh preference pairs), and the guard that keeps
 * held-out prompts out of anything trained on: a prompt listed in an `exclude` file (e.g. the
 * evaluation prompts) is never sampled, so it can never reach a training set built from samples.
 */
import { UserError } from '../errors.js';
import { loadDataset } from './dataset.js';
import type { BadRowPolicy } from './problems.js';
import type { Message } from './schemas.js';

/** One prompt as a conversation ending on a user turn (a string prompt becomes one user message). */
export type PromptMessages = Message[];

/** TRL's prompt-only rows (`prompt` as text or messages, or `messages`) → message lists, in file order. */
export async function readPrompts(
  file: string,
  opts: { onBadRow?: BadRowPolicy; warn?: (message: string) => void } = {},
): Promise<PromptMessages[]> {
  return (await readPromptRows(file, opts)).map((r) => r.prompt);
}

/** A prompt row as samplers use it: the messages and Llama 2's IS_SAFETY(p) (the row's `is_safety`, absent = false). */
export interface PromptRow {
  prompt: PromptMessages;
  isSafety: boolean;
}

/** Prompt rows with their `is_safety` column, in file order; a non-boolean `is_safety` is an error naming the row. */
export async function readPromptRows(
  file: string,
  opts: { onBadRow?: BadRowPolicy; warn?: (message: string) => void } = {},
): Promise<PromptRow[]> {
  const rows = await loadDataset(file, 'prompts', opts);
  return rows.map((r, i) => {
    const value = 'messages' in r ? r.messages : r.prompt;
    const prompt = typeof value === 'string' ? [{ role: 'user' as const, content: value }] : value.map((m) => ({ role: m.role, content: m.content }));
    const flag = (r as { is_safety?: unknown }).is_safety;
    if (flag !== undefined && flag !== null && typeof flag !== 'boolean') {
      throw new UserError(`${file}: prompt row ${i + 1}: is_safety: expected true or false, got ${JSON.stringify(flag)}`);
    }
    return { prompt, isSafety: flag === true };
  });
}

/**
 * What makes two prompts the same for exclusion: every message's role and its text with case and
 * runs of white space folded, so "Add 8 and 5." and "add 8  and 5. " are one prompt. Deliberately
 * generous: excluding a near-duplicate costs one training prompt, leaking one costs the evaluation.
 */
export function promptKey(prompt: string | readonly Message[]): string {
  const messages = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
  return JSON.stringify(messages.map((m) => [m.role, m.content.toLowerCase().replace(/\s+/g, ' ').trim()]));
}

/** The keys of every prompt in the exclude files. */
export async function readExcludedPrompts(files: readonly string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const file of files) {
    let prompts: PromptMessages[];
    try {
      prompts = await readPrompts(file);
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`exclude file ${file}: ${e.message}`);
      throw e;
    }
    for (const p of prompts) keys.add(promptKey(p));
  }
  return keys;
}

/** `items` without those whose prompt is excluded (order kept), and how many were dropped. */
export function withoutExcluded<T>(
  items: readonly T[],
  promptOf: (item: T) => readonly Message[],
  excluded: ReadonlySet<string>,
): { kept: T[]; dropped: number } {
  const kept = items.filter((item) => !excluded.has(promptKey(promptOf(item))));
  return { kept, dropped: items.length - kept.length };
}

/**
 * The prompts a sampler may use: the file's distinct prompts (a repeat would only count twice),
 * minus every prompt of the exclude files, in file order, each with its key and its is_safety flag.
 */
export async function samplingPrompts(
  file: string,
  excludeFiles: readonly string[],
  log: (message: string) => void = () => undefined,
): Promise<Array<{ key: string; prompt: PromptMessages; isSafety: boolean }>> {
  const all = (await readPromptRows(file, { warn: log })).map((r) => ({ key: promptKey(r.prompt), prompt: r.prompt, isSafety: r.isSafety }));
  const { kept, dropped } = withoutExcluded(all, (p) => p.prompt, await readExcludedPrompts(excludeFiles));
  if (dropped > 0) log(`${dropped} of ${all.length} prompts of ${file} are in the exclude files (${excludeFiles.join(', ')}); never sampled`);
  const seen = new Set<string>();
  return kept.filter((p) => !seen.has(p.key) && (seen.add(p.key), true));
}
