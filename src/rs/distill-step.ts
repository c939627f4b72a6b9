/**
 * Step 3b of the rs recipe: safety context distillation on the kept replies (context-distillation.ts
 * decides; this runs it with the real models and writes its rows), and the check of its safety
 * reward model before any sampling.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeRowsAtomic } from '../data/write-atomic.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { resolveModelPath, type LlamaModel } from '../model/index.js';
import { readRewardInfo } from '../model/io/reward-kind.js';
import { resolveDataPath } from '../paths.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import type { RsConfig } from './config.js';
import { contextDistill, type DistillationRow } from './context-distillation.js';
import { policySampler } from './policy-sampler.js';
import type { ReplyScorer } from './sampling.js';
import { rewardModelScorer } from './score.js';
import type { PoolEntry } from './select.js';

export const DISTILLATION_FILE = 'context_distillation.jsonl';

/** The safety reward model's folder when distillation is on (null when off); refused unless it is one. */
export function safetyRewardDir(cfg: RsConfig): string | null {
  const cd = cfg.context_distillation;
  if (!cd.enabled) return null;
  const dir = resolve(resolveModelPath(resolveDataPath(cd.reward_model)));
  if (!existsSync(join(dir, 'config.json'))) {
    throw new UserError(`context_distillation.reward_model: ${cd.reward_model} has no config.json (train the safety reward model first: a reward config with reward.kind: safety)`);
  }
  const info = readRewardInfo(dir);
  if (info !== null && info.kind !== 'safety') {
    throw new UserError(`context_distillation.reward_model: ${cd.reward_model} is a ${info.kind} reward model (its reward_model.json); it needs the safety one`);
  }
  return dir;
}

export interface DistillStepInput {
  cfg: RsConfig;
  safetyDir: string;
  runDir: string;
  kept: PoolEntry[];
  prompts: readonly { isSafety: boolean }[];
  model: LlamaModel;
  tokenizer: Tokenizer;
  template: TemplateName;
  rewardScore: ReplyScorer;
  log: (m: string) => void;
}

/** The preprompted reply where the safety model prefers it; writes context_distillation.jsonl. */
export async function distillSafetyPrompts(input: DistillStepInput): Promise<{ kept: PoolEntry[]; rows: DistillationRow[] }> {
  const { cfg, kept, prompts } = input;
  const cd = cfg.context_distillation;
  const safety = await rewardModelScorer(input.safetyDir, { template: cfg.tokenizer.template, batchSize: cfg.rs.score_batch_size });
  let result: { kept: PoolEntry[]; rows: DistillationRow[] };
  try {
    result = await contextDistill({
      kept,
      // The round's prompts come first in `kept`, in order; carried pool entries are not resampled.
      isSafety: kept.map((_, i) => prompts[i]?.isSafety ?? false),
      preprompt: cd.preprompt,
      placement: cd.placement,
      k: cd.k,
      sample: policySampler(input.model, input.tokenizer, {
        template: input.template,
        maxNewTokens: cfg.rs.max_new_tokens,
        temperature: cfg.rs.temperature,
        topP: cfg.rs.top_p,
        batchSize: cfg.rs.batch_size,
      }),
      rng: new Rng((cfg.engine.seed ^ 0x5afe7c0d) >>> 0),
      safetyScore: safety.score,
      rewardScore: input.rewardScore,
    });
  } finally {
    safety.dispose();
  }
  const used = result.rows.filter((r) => r.used).length;
  input.log(`rs: context distillation: ${used} of ${result.rows.length} is_safety prompts train on the preprompted reply (the safety model scored it higher)`);
  await writeRowsAtomic(join(input.runDir, DISTILLATION_FILE), result.rows as unknown as Record<string, unknown>[]);
  return result;
}
