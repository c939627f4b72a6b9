/**
 * What one stage gets from outside it, wired here for the pipeline and the CLI alike: the bundled
 * world's gold judge and instruction rules, and the recipe a stage runs inside its own (GAtt
 * fine-tunes with the SFT recipe). So no stage imports src/world or another stage.
 */
import type { DpoRunOptions } from '../dpo/recipe.js';
import type { GattOptions } from '../gatt/recipe.js';
import type { ResponseJudge } from '../ppo/recipe.js';
import { runSft, type SftResult } from '../sft/recipe.js';
import { judgeResponses, worldCheckers, worldRepair } from '../world/index.js';

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
