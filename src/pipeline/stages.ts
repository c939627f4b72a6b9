/**
 * The real stage recipes as the pipeline calls them: `(resolvedConfig, { parentRunId, log })`.
 * The only place the pipeline imports the stages.
 */
import type { ResolvedConfig } from '../config/index.js';
import { dpoConfigSchema, type DpoConfig } from '../dpo/config.js';
import { runDpo } from '../dpo/recipe.js';
import { gattConfigSchema, type GattConfig } from '../gatt/config.js';
import { runGatt } from '../gatt/recipe.js';
import { ppoConfigSchema, type PpoConfig } from '../ppo/config.js';
import { runPpo } from '../ppo/recipe.js';
import { pretrainConfigSchema, type PretrainConfig } from '../pretrain/config.js';
import { runPretrain } from '../pretrain/recipe.js';
import { rewardConfigSchema, type RewardConfig } from '../reward/config.js';
import { runReward } from '../reward/recipe.js';
import { sftConfigSchema, type SftConfig } from '../sft/config.js';
import { runSft } from '../sft/recipe.js';
import { samplePairs } from '../generation/pairs.js';
import { rsConfigSchema, type RsConfig } from '../rs/config.js';
import { runRs } from '../rs/recipe.js';
import { scoreFile } from '../reward/score.js';
import { readAllRecords } from '../data/index.js';
import type { RoundsDeps } from './rounds.js';
import type { StageDefinitions, StageRunContext } from './runner.js';
import { dpoWiring, gattWiring, ppoWiring, roundsWiring, rsWiring } from './stage-deps.js';

/**
 * The options every recipe gets. `parentRunId` nests the stage's MLflow run under the pipeline's;
 * a recipe that does not forward it yet logs a top-level run instead.
 */
function recipeOptions(ctx: StageRunContext): { log: (m: string) => void; parentRunId?: string } {
  return { log: ctx.log, ...(ctx.parentRunId !== undefined ? { parentRunId: ctx.parentRunId } : {}) };
}

export function realStages(): StageDefinitions {
  return {
    pretrain: { schema: pretrainConfigSchema, run: async (r, ctx) => void (await runPretrain(r as ResolvedConfig<PretrainConfig>, recipeOptions(ctx))) },
    sft: { schema: sftConfigSchema, run: async (r, ctx) => void (await runSft(r as ResolvedConfig<SftConfig>, recipeOptions(ctx))) },
    reward: { schema: rewardConfigSchema, run: async (r, ctx) => void (await runReward(r as ResolvedConfig<RewardConfig>, recipeOptions(ctx))) },
    reward_safety: { schema: rewardConfigSchema, run: async (r, ctx) => void (await runReward(r as ResolvedConfig<RewardConfig>, recipeOptions(ctx))) },
    ppo: { schema: ppoConfigSchema, run: async (r, ctx) => void (await runPpo(r as ResolvedConfig<PpoConfig>, { ...recipeOptions(ctx), ...ppoWiring })) },
    // DPO scores its held-out answers with the world's gold judge (eval.judge); the stage never imports the world.
    dpo: { schema: dpoConfigSchema, run: async (r, ctx) => void (await runDpo(r as ResolvedConfig<DpoConfig>, { ...recipeOptions(ctx), ...dpoWiring })) },
    gatt: { schema: gattConfigSchema, run: async (r, ctx) => void (await runGatt(r as ResolvedConfig<GattConfig>, { ...recipeOptions(ctx), ...gattWiring })) },
  };
}

/** What the iterative rounds run: the rs recipe (judged by the world), pair sampling, the world's annotator, reward scoring. */
export function realRounds(): RoundsDeps {
  return {
    rs: { schema: rsConfigSchema, run: async (r, ctx) => void (await runRs(r as ResolvedConfig<RsConfig>, { ...recipeOptions(ctx), ...rsWiring })) },
    samplePairs,
    ...roundsWiring,
    accuracy: rewardAccuracy,
  };
}

/** Share of labelled pairs the reward model scores chosen above rejected (ties count as wrong); the scored rows go to `outFile`. */
export async function rewardAccuracy(rewardModelDir: string, pairsFile: string, outFile: string): Promise<number> {
  await scoreFile(rewardModelDir, pairsFile, outFile);
  const { rows } = await readAllRecords(outFile);
  const right = rows.filter((r) => {
    const v = r.value as { reward_chosen: number; reward_rejected: number };
    return v.reward_chosen > v.reward_rejected;
  }).length;
  return rows.length === 0 ? 0 : right / rows.length;
}
