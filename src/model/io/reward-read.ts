/**
 * `reward_read.json` beside a reward model: where the model reads a reply's score
 * (`{"read_at": "turn_end" | "last_token"}`, see src/tokenizer/score-position.ts). The reward stage
 * writes it; every stage that scores with the model honours it. A folder without one (a reward
 * model trained elsewhere — TRL, HF — on the full rendering) reads at its last token.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { readJsonFile } from '../../json-file.js';
import { READ_AT, type ReadAt } from '../../tokenizer/score-position.js';

export const REWARD_READ_FILE = 'reward_read.json';

/** Where the reward model in `dir` reads: its record, else `last_token`. */
export function readRewardReadAt(dir: string): ReadAt {
  const path = join(dir, REWARD_READ_FILE);
  if (!existsSync(path)) return 'last_token';
  const r = readJsonFile(path) as { read_at?: unknown } | null;
  if (!(READ_AT as readonly unknown[]).includes(r?.read_at)) {
    throw new UserError(`${path}: expected {"read_at": ${READ_AT.map((x) => `"${x}"`).join(' | ')}}`);
  }
  return r!.read_at as ReadAt;
}

export function writeRewardReadAt(dir: string, readAt: ReadAt): void {
  writeFileSync(join(dir, REWARD_READ_FILE), JSON.stringify({ read_at: readAt }, null, 2) + '\n');
}
