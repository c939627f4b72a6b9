/**
 * What one stage gets from outside it, wired here for the pipeline and the CLI alike: the bundled
 * world's gold judge and instruction rules, and the recipe a stage runs inside its own (GAtt
 * fine-tunes with the SFT recipe). So no stage imports src/world or another stage.
 */
import type { DpoRunOptions } from '../dpo/recipe.js';
import type { GattOptions } from '../gatt/recipe.js';
import type { ResponseJudge } from '../ppo/recipe.js';
import { runSft, type SftResult } from '../sft/recipe.js';
import { Rng } from '../engine/rng.js';
import type { RsHooks } from '../rs/recipe.js';
import { annotatePairs } from '../world/annotate.js';
import { judgeResponses, worldCheckers, worldRepair } from '../world/index.js';
import type { RoundsDeps } from './rounds.js';

/** GAtt: the SFT recipe for its fine-tuning step, the world's instruction checkers and rewrite rules. */
export const gattWiring = {
  // The typecheck of this line is what proves GAtt's generated SFT config is a complete SftConfig.
  fineTune: runSft,
  checkers: worldCheckers,
  repair: worldRepair,
} satisfies Pick<GattOptions<SftResult>, 'fineTune' | 'checkers' | 'repair'>;

/** PPO: the world's gold judge for eval/judge_score. */
export const ppoWiring: { judge: ResponseJudge } = {
  // PPO's prompts are rows read and checked by its prompt reader (roles are system / user / assistant).
  judge: (prompts, responses) => judgeResponses(prompts as Parameters<typeof judgeResponses>[0], responses).mean,
};

/** DPO: the world's gold judge for its held-out prompts (eval/judge_score, eval.json). */
export const dpoWiring = { judge: judgeResponses } satisfies Pick<DpoRunOptions, 'judge'>;

/** rs: the world's gold judge of the best / median / first sample (best_of_k.json). */
export const rsWiring = {
  judge: (prompts, replies) => judgeResponses(prompts as Parameters<typeof judgeResponses>[0], replies).scores,
} satisfies Pick<RsHooks, 'judge'>;

/** The rounds: the world's judge labels each round's fresh pairs (rlhf world annotate). */
export const roundsWiring: Pick<RoundsDeps, 'annotate'> = {
  annotate: (rows, { noise, seed, where }) => {
    const { rows: labelled, stats } = annotatePairs(rows, { noise, rng: new Rng(seed), where });
    return { rows: labelled, stats: { ...stats } };
  },
};
