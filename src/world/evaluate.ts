import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { ChatMessage } from './generate.js';
import { judge } from './judge.js';

/**
 * Measuring a model on the world: judge its replies to a prompts file, overall and per task family.
 * Generation is passed in as a function, so this module needs no model code and any sampler works.
 */

export interface FamilyScore {
  mean: number;
  count: number;
}

export interface WorldScore {
  mean: number;
  count: number;
  byFamily: Record<string, FamilyScore>;
  /** One judge score per prompt, in order. */
  scores: number[];
}

/** Mean judge score of `responses[i]` to `prompts[i]`, and per family (prompts no family parses go under "unknown"). */
export function judgeResponses(prompts: readonly (readonly ChatMessage[])[], responses: readonly string[]): WorldScore {
  if (prompts.length !== responses.length) {
    throw new Error(`judgeResponses: ${prompts.length} prompts but ${responses.length} responses`);
  }
  const scores: number[] = [];
  const sums = new Map<string, { sum: number; count: number }>();
  prompts.forEach((prompt, i) => {
    const { score, family } = judge(prompt, responses[i]!);
    scores.push(score);
    const key = family ?? 'unknown';
    const entry = sums.get(key) ?? { sum: 0, count: 0 };
    entry.sum += score;
    entry.count += 1;
    sums.set(key, entry);
  });
  const byFamily: Record<string, FamilyScore> = {};
  for (const [family, { sum, count }] of [...sums].sort(([a], [b]) => a.localeCompare(b))) {
    byFamily[family] = { mean: sum / count, count };
  }
  return { mean: scores.length === 0 ? 0 : scores.reduce((s, x) => s + x, 0) / scores.length, count: scores.length, byFamily, scores };
}

/**
 * Read a prompts file (JSONL rows `{prompt: [{role, content}, ...]}` or `{prompt: "text"}` or
 * `{messages: [...]}`) into message lists.
 */
export function readPromptsFile(path: string, limit?: number): ChatMessage[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read prompts file ${path}: ${(e as Error).message}`);
  }
  const prompts: ChatMessage[][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (limit !== undefined && prompts.length >= limit) break;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${path} line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    prompts.push(promptMessages(row, path, i + 1));
  }
  return prompts;
}

function promptMessages(row: unknown, path: string, line: number): ChatMessage[] {
  const r = (row ?? {}) as { prompt?: unknown; messages?: unknown };
  const value = r.prompt ?? r.messages;
  if (typeof value === 'string') return [{ role: 'user', content: value }];
  if (Array.isArray(value) && value.every(isMessage)) return value as ChatMessage[];
  throw new UserError(`${path} line ${line}: prompt: expected a string or a list of {role, content} messages`);
}

function isMessage(m: unknown): boolean {
  const x = m as { role?: unknown; content?: unknown } | null;
  return x !== null && typeof x === 'object' && typeof x.role === 'string' && typeof x.content === 'string';
}

/** Generate replies to every prompt of `promptsFile` with `generate` and judge them. */
export async function evaluateWithGenerator(
  generate: (prompts: ChatMessage[][]) => Promise<string[]>,
  promptsFile: string,
  options: { limit?: number } = {},
): Promise<WorldScore> {
  const prompts = readPromptsFile(promptsFile, options.limit);
  const responses = await generate(prompts);
  return judgeResponses(prompts, responses);
}

/** A printable table: overall mean, then one line per family. */
export function formatWorldScore(score: WorldScore): string {
  const lines = [`judge score: ${score.mean.toFixed(4)} over ${score.count} prompts`];
  for (const [family, { mean, count }] of Object.entries(score.byFamily)) {
    lines.push(`  ${family.padEnd(13)} ${mean.toFixed(4)}  (${count})`);
  }
  return lines.join('\n');
}
