/**
 * GAtt's fine-tuning mix: the synthesised multi-turn dialogues plus plain single-answer rows (SFT or
 * rejection-sampling data), so the model keeps answering plain questions well while it learns to
 * keep an instruction alive. Llama 2 merged the GAtt data into its fine-tuning mix rather than
 * fine-tuning on it alone; fine-tuning on the dialogues only cost the world model 0.17 judge score.
 */
import { dirname, join } from 'node:path';
import { readAllRecords } from '../data/index.js';
import { readExcludedPrompts, withoutExcluded } from '../data/prompts.js';
import type { Message as PromptMessage } from '../data/schemas.js';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { resolveDataPath } from '../paths.js';
import type { GattConfig } from './config.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';

interface Message {
  role: string;
  content: string;
}

/** A mix row as the SFT reader takes it: a dialogue, trained on its last assistant turn. */
export interface MixRow {
  messages: Message[];
}

function isMessages(value: unknown): value is Message[] {
  return Array.isArray(value) && value.length > 0 && value.every((m) => m !== null && typeof m === 'object' && typeof (m as Message).role === 'string' && typeof (m as Message).content === 'string');
}

/**
 * One dataset row as a dialogue: `messages`, or `prompt` + `completion` (each messages or text);
 * with `promptOnly`, also a prompt alone (`prompt`, or `messages` ending in a user turn), to be
 * answered by the model. Returns an error text for a row of another shape.
 */
export function mixRowOf(value: unknown, promptOnly = false): MixRow | string {
  if (value === null || typeof value !== 'object') return 'not an object';
  const row = value as Record<string, unknown>;
  const side = (v: unknown, role: string): Message[] | null => (typeof v === 'string' ? [{ role, content: v }] : isMessages(v) ? v.map((m) => ({ role: m.role, content: m.content })) : null);
  let messages: Message[];
  if (row['messages'] !== undefined) {
    if (!isMessages(row['messages'])) return 'messages: not a list of {role, content}';
    messages = row['messages'].map((m) => ({ role: m.role, content: m.content }));
  } else if (row['prompt'] !== undefined && row['completion'] !== undefined) {
    const prompt = side(row['prompt'], 'user');
    const completion = side(row['completion'], 'assistant');
    if (prompt === null || completion === null) return 'prompt / completion: neither text nor a list of {role, content}';
    messages = [...prompt, ...completion];
  } else if (row['prompt'] !== undefined && promptOnly) {
    const prompt = side(row['prompt'], 'user');
    if (prompt === null) return 'prompt: neither text nor a list of {role, content}';
    messages = prompt;
  } else {
    return promptOnly ? 'needs messages, or prompt (and completion)' : 'needs messages, or prompt and completion (a prompt alone only with data.mix_answers=model)';
  }
  const last = messages[messages.length - 1]!.role;
  if (last !== 'assistant' && !(promptOnly && last === 'user')) return promptOnly ? 'the last message is neither a user turn nor an assistant answer' : 'the last message is not an assistant answer';
  return { messages };
}

/** A mix row's prompt: the dialogue without its answer (a prompt-only row is all prompt). */
function promptOf(row: MixRow): Message[] {
  const m = row.messages;
  return m[m.length - 1]!.role === 'assistant' ? m.slice(0, -1) : m;
}

/** How many plain rows go with `synthRows` synthesised ones at `ratio` plain rows per synthesised row. */
export function mixCount(synthRows: number, ratio: number): number {
  return Math.round(synthRows * ratio);
}

/**
 * `count` rows drawn from `pool` without replacement (a seeded permutation), starting a fresh
 * permutation whenever the pool runs out — so each row appears ⌊count/|pool|⌋ or one more times.
 */
export function drawMixRows<T>(pool: readonly T[], count: number, seed: number): T[] {
  if (count === 0) return [];
  if (pool.length === 0) throw new UserError('data.mix: the mix files hold no rows, but data.mix_ratio asks for some');
  const rng = new Rng(seed);
  const out: T[] = [];
  while (out.length < count) {
    const order = rng.shuffle(pool.map((_, i) => i));
    for (const i of order) {
      if (out.length === count) break;
      out.push(pool[i]!);
    }
  }
  return out;
}

/**
 * Every row of the mix files as a dialogue (prompt-only rows allowed with `promptOnly`); a row of
 * another shape is an error naming file and row.
 */
export async function readMixRows(files: readonly string[], promptOnly = false): Promise<MixRow[]> {
  const rows: MixRow[] = [];
  for (const file of files) {
    const { rows: records, errors } = await readAllRecords(file);
    if (errors.length > 0) throw new UserError(`data.mix: ${file} row ${errors[0]!.row}: ${errors[0]!.error}`);
    for (const r of records) {
      const row = mixRowOf(r.value, promptOnly);
      if (typeof row === 'string') throw new UserError(`data.mix: ${file} row ${r.row}: ${row}`);
      rows.push(row);
    }
  }
  return rows;
}

/** The mixed training file in synth/. */
export const MIX_FILE = 'mix_train.jsonl';

/**
 * The fine-tuning rows: the synthesised file itself when data.mix is empty, else
 * synth/mix_train.jsonl — the synthesised rows, then round(rows × data.mix_ratio) rows of the mix
 * files (seeded from engine.seed, so a resumed run trains on the same file).
 */
export async function mixedTrainFile(cfg: GattConfig, synthPath: string, answer: MixAnswerer, log: (m: string) => void): Promise<string> {
  if (cfg.data.mix.length === 0 || cfg.data.mix_ratio === 0) return synthPath;
  const synthRows = (await readAllRecords(synthPath)).rows.map((r) => r.value as Record<string, unknown>);
  const byModel = cfg.data.mix_answers === 'model';
  const { kept: pool, dropped } = withoutExcluded(
    await readMixRows(cfg.data.mix.map((f) => resolveDataPath(f)), byModel),
    (row) => promptOf(row) as readonly PromptMessage[], // promptKey reads role and content as text, whatever the role
    await readExcludedPrompts(cfg.data.mix_exclude.map((f) => resolveDataPath(f))),
  );
  if (dropped > 0) log(`gatt: ${dropped} mix rows left out: their prompts are in data.mix_exclude (${cfg.data.mix_exclude.join(', ')})`);
  const drawn = drawMixRows(
    pool.map((_, i) => i),
    mixCount(synthRows.length, cfg.data.mix_ratio),
    (cfg.engine.seed ^ 0x6d697800) >>> 0,
  );
  const rows = byModel ? await withModelAnswers(pool, drawn, answer) : pool;
  const path = join(dirname(synthPath), MIX_FILE);
  await writeRowsAtomic(path, [...synthRows, ...drawn.map((i) => ({ messages: rows[i]!.messages }))]);
  const whose = byModel ? ", answered by the starting model (greedy)" : '';
  log(`gatt: fine-tuning on ${synthRows.length} synthesised rows + ${drawn.length} plain rows from ${cfg.data.mix.join(', ')} (${pool.length} there)${whose} → ${path}`);
  return path;
}

/** Replies to prompts (each a dialogue up to the answer), one per prompt: the starting model's, greedy. */
export type MixAnswerer = (prompts: Message[][]) => Promise<string[]>;

/** The pool with the drawn rows' last answer replaced by the model's own (each distinct row answered once). */
async function withModelAnswers(pool: readonly MixRow[], drawn: readonly number[], answer: MixAnswerer): Promise<MixRow[]> {
  const distinct = [...new Set(drawn)];
  const replies = await answer(distinct.map((i) => promptOf(pool[i]!)));
  const out = pool.slice();
  distinct.forEach((i, j) => {
    out[i] = { messages: [...promptOf(pool[i]!), { role: 'assistant', content: replies[j]! }] };
  });
  return out;
}

