/**
 * Dialogue seeds for GAtt: rows `{"user_turns": [...]}` (as `data/world/dialogues.jsonl`) or TRL
 * `{"messages": [...]}` dialogues, of which only the user turns are kept (answers are resampled).
 * Read through src/data, so JSONL, Arrow IPC and Parquet files all work (by extension).
 * The last `heldOut` rows are reserved for evaluation and never synthesised.
 */
import { existsSync } from 'node:fs';
import { readAllRecords } from '../data/index.js';
import { UserError } from '../errors.js';
import type { DialogueSeed } from './synthesize.js';

export async function readDialogueSeeds(path: string): Promise<DialogueSeed[]> {
  if (!existsSync(path)) throw new UserError(`cannot read dialogue seeds ${path}: no such file`);
  const { rows, errors } = await readAllRecords(path);
  if (errors.length > 0) throw new UserError(`${path} row ${errors[0]!.row}: ${errors[0]!.error}`);
  const seeds = rows.map((r) => ({ userTurns: userTurnsOf((r.value ?? {}) as { user_turns?: unknown; messages?: unknown }, `${path} row ${r.row}`) }));
  if (seeds.length === 0) throw new UserError(`${path}: no dialogue seeds`);
  return seeds;
}

function userTurnsOf(row: { user_turns?: unknown; messages?: unknown }, where: string): string[] {
  const isText = (x: unknown): x is string => typeof x === 'string' && x.trim() !== '';
  if (Array.isArray(row.user_turns)) {
    if (row.user_turns.length === 0 || !row.user_turns.every(isText)) throw new UserError(`${where}: user_turns must be a non-empty list of non-empty strings`);
    return row.user_turns;
  }
  if (Array.isArray(row.messages)) {
    const turns = (row.messages as { role?: unknown; content?: unknown }[]).filter((m) => m?.role === 'user').map((m) => m.content);
    if (turns.length === 0 || !turns.every(isText)) throw new UserError(`${where}: messages must hold at least one user message with non-empty content`);
    return turns;
  }
  throw new UserError(`${where}: expected a "user_turns" list or a "messages" dialogue`);
}

/** Split seeds: all but the last `heldOut` for synthesis, the last `heldOut` for evaluation. */
export function splitSeeds(seeds: readonly DialogueSeed[], heldOut: number): { train: DialogueSeed[]; eval: DialogueSeed[] } {
  if (heldOut >= seeds.length) throw new UserError(`held-out seeds (${heldOut}) must be fewer than the ${seeds.length} dialogue seeds`);
  return { train: seeds.slice(0, seeds.length - heldOut), eval: seeds.slice(seeds.length - heldOut) };
}
