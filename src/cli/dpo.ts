/** `rlhf dpo --config FILE [k=v ...]`: direct preference optimisation (DPO and TRL's variants) on preference pairs. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, schemaHelpText } from '../config/index.js';
import { dpoConfigSchema } from '../dpo/config.js';
import { runDpo } from '../dpo/recipe.js';
import { dpoWiring } from '../pipeline/stage-deps.js';

interface DpoArgs {
  config: string;
  overrides: string[];
}

export const dpoCommand: CommandModule<object, DpoArgs> = {
  command: 'dpo [overrides..]',
  describe: 'Direct preference optimisation on preference pairs (sigmoid, ipo, hinge, robust, apo_zero, sft losses); reference = adapters off or a frozen copy',
  builder: (y: Argv) =>
    y
      .option('config', {
        type: 'string',
        demandOption: true,
        describe: 'Config file, or a shipped config name (e.g. dpo/world_lora)',
      })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
      .epilogue(schemaHelpText(dpoConfigSchema)) as unknown as Argv<DpoArgs>,
  handler: async (args) => {
    const resolved = loadConfig(findConfig(args.config), args.overrides.map(String), { stage: 'dpo', schema: dpoConfigSchema });
    // The world's gold judge scores held-out answers (eval.judge); the stage itself never imports the world.
    const result = await runDpo(resolved, dpoWiring);
    const e = result.eval ?? {};
    const shown = ['eval/loss', 'eval/rewards/accuracies', 'eval/rewards/margins', 'eval/judge_score'].filter((k) => e[k] !== undefined);
    console.log(
      `dpo done: ${result.steps} steps` +
        (shown.length > 0 ? `, ${shown.map((k) => `${k} ${e[k]!.toFixed(4)}`).join(', ')}` : '') +
        `\noutput: ${result.finalDir}`,
    );
  },
};
