/**
 * `reward_model.json` beside a reward model: what it scores (Llama 2 trains a helpfulness and a
 * safety model, §3.2.2) and the data it was trained on. The reward stage writes it; PPO reads it to
 * check that each named reward model scores what its slot expects. It lives with the model folder
 * format, not in a stage, because two stages read it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { readJsonFile } from '../../json-file.js';

export const REWARD_INFO_FILE = 'reward_model.json';
export const REWARD_KINDS = ['helpfulness', 'safety'] as const;
export type RewardKind = (typeof REWARD_KINDS)[number];

export interface RewardInfo {
  kind: RewardKind;
  /** Training files and how many pairs each gave (after the data mix). */
  train: Array<{ file: string; pairs: number }>;
  eval: string | null;
}

/** Read `reward_model.json` from a reward model folder (null when the folder has none: an older model). */
export function readRewardInfo(dir: string): RewardInfo | null {
  const path = join(dir, REWARD_INFO_FILE);
  if (!existsSync(path)) return null;
  const r = readJsonFile(path) as Partial<RewardInfo> | null;
  if (typeof r?.kind !== 'string' || !(REWARD_KINDS as readonly string[]).includes(r.kind)) {
    throw new UserError(`${path}: expected {"kind": ${REWARD_KINDS.map((k) => `"${k}"`).join(' | ')}, ...}`);
  }
  return r as RewardInfo;
}
