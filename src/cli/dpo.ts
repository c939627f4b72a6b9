/** `rlhf dpo --config FILE [k=v ...]`: direct preference optimisation (DPO and TRL's variants) on preference pairs. */
import { dpoConfigSchema } from '../dpo/config.js';
import { runDpo } from '../dpo/recipe.js';
import { dpoWiring } from '../pipeline/stage-deps.js';
import { stageCommand } from './stage-command.js';

export const dpoCommand = stageCommand('dpo', dpoConfigSchema, {
  describe: 'Direct preference optimisation on preference pairs (sigmoid, ipo, hinge, robust, apo_zero, sft losses); reference = adapters off or a frozen copy',
  example: 'dpo/world_lora',
  run: async (resolved) => {
    // The world's gold judge scores held-out answers (eval.judge); the stage itself never imports the world.
    const result = await runDpo(resolved, dpoWiring);
    const e = result.eval ?? {};
    const shown = ['eval/loss', 'eval/rewards/accuracies', 'eval/rewards/margins', 'eval/judge_score'].filter((k) => e[k] !== undefined);
    return (
      `dpo done: ${result.steps} steps` +
      (shown.length > 0 ? `, ${shown.map((k) => `${k} ${e[k]!.toFixed(4)}`).join(', ')}` : '') +
      `\noutput: ${result.finalDir}`
    );
  },
});
