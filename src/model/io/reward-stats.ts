/**
 * `reward_stats.json` beside a reward model: the mean and std of its rewards over the training
 * pairs. The reward stage writes it; PPO and `rlhf reward score --normalize` whiten with it. It
 * lives with the model folder format, not in a stage, because two stages read it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { readJsonFile } from '../../json-file.js';

export const REWARD_STATS_FILE = 'reward_stats.json';

export interface RewardStats {
  mean: number;
  /** > 0: rewards are divided by it. */
  std: number;
  /** How many rewards (2 per pair) they were computed from. */
  count?: number;
}

/** Read `reward_stats.json` from a reward model folder (null when the folder has none). */
export function readRewardStats(dir: string): RewardStats | null {
  const path = join(dir, REWARD_STATS_FILE);
  if (!existsSync(path)) return null;
  const r = readJsonFile(path) as Partial<RewardStats> | null;
  if (typeof r?.mean !== 'number' || typeof r?.std !== 'number' || !(r.std > 0)) {
    throw new UserError(`${path}: expected {"mean": number, "std": number > 0}`);
  }
  return r as RewardStats;
}
