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
import type { StageDefinitions, StageRunContext } from './runner.js';
import { dpoWiring, gattWiring, ppoWiring } from './stage-deps.js';

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
