/** `rlhf pretrain --config FILE [k=v ...]`: train a base Llama from scratch on a text corpus. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, schemaHelpText } from '../config/index.js';
import { pretrainConfigSchema } from '../pretrain/config.js';
import { runPretrain } from '../pretrain/recipe.js';

interface PretrainArgs {
  config: string;
  overrides: string[];
}

export const pretrainCommand: CommandModule<object, PretrainArgs> = {
  command: 'pretrain [overrides..]',
  describe: 'Pretrain a base Llama from scratch on a text corpus (tokenizer, packing, causal LM loss)',
  builder: (y: Argv) =>
    y
      .option('config', {
        type: 'string',
        demandOption: true,
        describe: 'Config file, or a shipped config name (e.g. pretrain/world_tiny)',
      })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
      .epilogue(schemaHelpText(pretrainConfigSchema)) as unknown as Argv<PretrainArgs>,
  handler: async (args) => {
    const resolved = loadConfig(findConfig(args.config), args.overrides.map(String), {
      stage: 'pretrain',
      schema: pretrainConfigSchema,
    });
    const result = await runPretrain(resolved);
    const last = result.losses[result.losses.length - 1];
    const lastEval = result.evalLosses[result.evalLosses.length - 1];
    console.log(
      `pretrain done: ${result.totalSteps} steps` +
        (last ? `, final loss ${last.loss.toFixed(4)}` : '') +
        (lastEval ? `, eval loss ${lastEval.loss.toFixed(4)}` : '') +
        (Number.isFinite(result.tokensPerSecond) ? `, ${Math.round(result.tokensPerSecond)} tokens/s` : '') +
        `\nmodel: ${result.finalDir}`,
    );
  },
};
