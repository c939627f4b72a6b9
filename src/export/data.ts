/**
 * Our datasets in the engines' layouts, written next to the generated scripts. Both engines read
 * TRL's column conventions, so one converted file serves either:
 *   - dialogues: `messages` (every assistant turn trained), or conversational `prompt` +
 *     `completion` when only the last answer is trained (TRL trains the completion; OpenRLHF takes
 *     `--data.input_key prompt --data.output_key completion`);
 *   - preference pairs: `prompt` / `chosen` / `rejected` (+ `margin`, TRL's RewardTrainer and
 *     OpenRLHF's `--model.margin_loss_enable` column), other columns dropped;
 *   - prompts: `prompt` as a message list (OpenRLHF applies the chat template to it).
 * The same seeded subsets and splits as the stages draw (Rng over row indices) keep the rows equal.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkRow, readAllRecords, type Message, type Strength } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { resolveDataPath } from '../paths.js';

export type Row = Record<string, unknown>;

/** Where a pair's margin comes from (the reward stage's `reward.margin`). */
export type MarginKind = 'none' | 'small' | 'large' | 'column';

/**
 * Llama 2's margins (Table 27) by preference strength — the reward stage's table, copied so this
 * shared block imports no stage; test/export pins the two equal.
 */
export const LLAMA2_MARGINS: Record<'small' | 'large', Record<Strength, number>> = {
  small: { significantly_better: 1, better: 2 / 3, slightly_better: 1 / 3, negligibly_better: 0 },
  large: { significantly_better: 3, better: 2, slightly_better: 1, negligibly_better: 0 },
};

function pairMargin(row: { margin?: number; strength?: Strength }, kind: MarginKind): number | null {
  if (kind === 'none') return 0;
  if (kind === 'column') return row.margin ?? null;
  return row.strength === undefined ? null : LLAMA2_MARGINS[kind][row.strength];
}

/** A data path as the stages resolve it (working directory, else the package), made absolute. */
export function absoluteDataPath(path: string): string {
  return resolve(resolveDataPath(path));
}

/** Every row of a dataset file (.jsonl, .arrow, .parquet); a missing file or bad row is a UserError naming it. */
export async function readRows(path: string, key: string): Promise<Row[]> {
  const file = absoluteDataPath(path);
  if (!existsSync(file)) throw new UserError(`${key}: ${path} does not exist`);
  const { rows, errors } = await readAllRecords(file);
  if (errors.length > 0) throw new UserError(`${file}: row ${errors[0]!.row}: ${errors[0]!.error}`);
  return rows.map((r) => r.value as Row);
}

/** A row that does not fit its schema: an error naming it, or (`data.on_bad_row: skip`) a warning and the row dropped. */
export interface BadRows {
  onBad: 'error' | 'skip';
  warn: (message: string) => void;
}

const STRICT: BadRows = { onBad: 'error', warn: () => {} };

function bad(file: string, i: number, issues: { field: string; reason: string }[], policy: BadRows): null {
  const message = `${file}: row ${i + 1}: ${issues.map((x) => `${x.field || 'row'}: ${x.reason}`).join('; ')}`;
  if (policy.onBad === 'error') throw new UserError(message);
  policy.warn(`${message} (skipped: data.on_bad_row is skip)`);
  return null;
}

const kept = (rows: (Row | null)[]): Row[] => rows.filter((r): r is Row => r !== null);

/** Which tokens of a dialogue get loss (the `data.strategy` of SFT; GAtt and RS train the last answer). */
export type LossTokens = 'assistant' | 'all' | 'last';

/**
 * Dialogue rows for SFT. `last` splits each dialogue into its conversational prompt (every turn
 * before the last) and completion (the last answer), so both engines train that answer only.
 */
export function sftRows(rows: readonly Row[], loss: LossTokens, file: string, policy: BadRows = STRICT): Row[] {
  return kept(rows.map((value, i) => {
    const c = checkRow('sft', value);
    if (!c.ok) return bad(file, i, c.issues, policy);
    const row = c.row as Row;
    if (Array.isArray(row.messages)) {
      const messages = (row.messages as Message[]).map((m) => ({ role: m.role, content: m.content }));
      if (loss !== 'last') return { messages };
      const last = messages[messages.length - 1]!;
      if (last.role !== 'assistant') throw new UserError(`${file}: row ${i + 1}: messages: the last turn must be the assistant's (it is the one trained)`);
      return { prompt: messages.slice(0, -1), completion: [last] };
    }
    if (typeof row.prompt === 'string') return { prompt: row.prompt, completion: row.completion };
    return { text: row.text };
  }));
}

/** The columns a set of rows shares; an engine reads one layout per file, so mixed forms are refused. */
export function rowLayout(rows: readonly Row[], file: string): string {
  const layouts = [...new Set(rows.map((r) => Object.keys(r).sort().join('+')))];
  if (layouts.length > 1) throw new UserError(`${file}: rows mix layouts (${layouts.join(', ')}); the engines read one layout per file`);
  return layouts[0] ?? 'messages';
}

/**
 * Preference rows: prompt / chosen / rejected, and `margin` (Llama 2's, from `strength` or the
 * margin column) when `margin` is not `none` — the engines only read a margin column.
 */
export function preferenceRows(rows: readonly Row[], margin: MarginKind | null, file: string, policy: BadRows = STRICT): Row[] {
  return kept(rows.map((value, i) => {
    const c = checkRow('preference', value);
    if (!c.ok) return bad(file, i, c.issues, policy);
    const r = c.row;
    const out: Row = r.prompt === undefined ? {} : { prompt: r.prompt };
    out.chosen = r.chosen;
    out.rejected = r.rejected;
    if (margin !== null && margin !== 'none') {
      const m = pairMargin({ margin: r.margin, strength: r.strength as Strength | undefined }, margin);
      if (m === null) {
        throw new UserError(`${file}: row ${i + 1}: reward.margin=${margin} needs ${margin === 'column' ? 'a margin column' : 'a strength column'}`);
      }
      out.margin = m;
    }
    return out;
  }));
}

/** Prompt rows as `{prompt: messages}` (a text prompt becomes one user turn). */
export function promptRows(rows: readonly Row[], file: string): Row[] {
  return rows.map((value, i) => {
    const c = checkRow('prompts', value);
    if (!c.ok) return bad(file, i, c.issues, STRICT)!;
    const row = c.row as Row;
    const prompt = 'messages' in row ? row.messages : row.prompt;
    return { prompt: typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt };
  });
}

/** The reward stage's seeded subset (`data.max_train_pairs`): the same indices, in file order. */
export function seededSubset<T>(items: readonly T[], max: number | null, seed: number): T[] {
  if (max === null || items.length <= max) return items.slice();
  const chosen = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}

/** The stages' seeded hold-out: `count` rows of `items` (chosen by Rng(seed)) become the eval set. */
export function seededHoldOut<T>(items: readonly T[], count: number, seed: number): { train: T[]; eval: T[] } {
  const order = new Rng(seed).shuffle(items.map((_, i) => i));
  const isEval = new Set(order.slice(0, count));
  return { train: items.filter((_, i) => !isEval.has(i)), eval: items.filter((_, i) => isEval.has(i)) };
}

/** A seeded shuffle, so that OpenRLHF's `max_samples` cap (the first rows) draws a random subset. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  return new Rng(seed).shuffle(items.slice());
}
