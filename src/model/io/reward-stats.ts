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

/**
 * `reward_stats.json` of a reward model that is about to be normalised with. A model folder
 * without it (a reward model trained by TRL or OpenRLHF) is refused, naming the file and how to
 * compute it; a folder that does not exist returns null (loading the model reports that).
 */
export function requireRewardStats(dir: string, key: string, otherwise: string): RewardStats | null {
  const stats = readRewardStats(dir);
  if (stats !== null || !existsSync(join(dir, 'config.json'))) return stats;
  throw new UserError(
    `${key}: ${join(dir, REWARD_STATS_FILE)} is missing (reward models trained by TRL or OpenRLHF have none): compute it on your ` +
      `preference pairs with \`rlhf reward score --model ${dir} --data PAIRS --out SCORED --write-stats\`, ${otherwise}`,
  );
}
