/** `rlhf ppo --config FILE [k=v ...]`: optimise a LoRA policy against a reward model with PPO. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, schemaHelpText } from '../config/index.js';
import { ppoConfigSchema } from '../ppo/config.js';
import { runPpo } from '../ppo/recipe.js';
import { ppoWiring } from '../pipeline/stage-deps.js';

interface PpoArgs {
  config: string;
  overrides: string[];
}

export const ppoCommand: CommandModule<object, PpoArgs> = {
  command: 'ppo [overrides..]',
  describe: 'PPO against a reward model (KL-penalised to the SFT reference, adaptive KL, GAE, clipped losses)',
  builder: (y: Argv) =>
    y
      .option('config', {
        type: 'string',
        demandOption: true,
        describe: 'Config file, or a shipped config name (e.g. ppo/world_lora)',
      })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set, ~key to delete' })
      .epilogue(schemaHelpText(ppoConfigSchema)) as unknown as Argv<PpoArgs>,
  handler: async (args) => {
    const resolved = loadConfig(findConfig(args.config), args.overrides.map(String), { stage: 'ppo', schema: ppoConfigSchema });
    const result = await runPpo(resolved, ppoWiring);
    const judge = result.lastEval?.['eval/judge_score'];
    const reward = result.lastEval?.['eval/reward_mean'];
    console.log(
      `ppo done: ${result.iterations} iterations` +
        (reward !== undefined ? `, eval reward ${reward.toFixed(4)}` : '') +
        (judge !== undefined ? `, judge score ${judge.toFixed(4)}` : '') +
        `\nadapter: ${result.finalDir}`,
    );
  },
};
