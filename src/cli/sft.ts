/** `rlhf sft --config FILE [k=v ...]`: supervised fine-tuning (LoRA or full) on dialogues. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, schemaHelpText } from '../config/index.js';
import { sftConfigSchema } from '../sft/config.js';
import { runSft } from '../sft/recipe.js';

interface SftArgs {
  config: string;
  overrides: string[];
}

export const sftCommand: CommandModule<object, SftArgs> = {
  command: 'sft [overrides..]',
  describe: 'Supervised fine-tuning on dialogues: LoRA (default) or full, loss on assistant tokens',
  builder: (y: Argv) =>
    y
      .option('config', {
        type: 'string',
        demandOption: true,
        describe: 'Config file, or a shipped config name (e.g. sft/world_lora)',
      })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
      .epilogue(schemaHelpText(sftConfigSchema)) as unknown as Argv<SftArgs>,
  handler: async (args) => {
    const resolved = loadConfig(findConfig(args.config), args.overrides.map(String), { stage: 'sft', schema: sftConfigSchema });
    const result = await runSft(resolved);
    const last = result.losses[result.losses.length - 1];
    console.log(
      `sft done: ${result.steps} steps` +
        (last ? `, final loss ${last.loss.toFixed(4)}` : '') +
        (result.evalLoss !== null ? `, eval loss ${result.evalLoss.toFixed(4)} (perplexity ${Math.exp(result.evalLoss).toFixed(2)})` : '') +
        (result.stoppedEarly ? ' (stopped early)' : '') +
        `\noutput: ${result.finalDir}`,
    );
  },
};
