/**
 * `rlhf reward --config FILE [k=v ...]`: train a reward model on preference pairs.
 * `rlhf reward score --model DIR --data FILE --out FILE`: add reward columns to a dataset.
 */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { UserError } from '../errors.js';
import { rewardConfigSchema } from '../reward/config.js';
import { runReward } from '../reward/recipe.js';
import { scoreFile } from '../reward/score.js';
import type { TemplateName } from '../tokenizer/index.js';
import { loadStageConfig, stageOptions } from './stage-command.js';

interface RewardArgs {
  config?: string;
  overrides: string[];
}

interface ScoreArgs {
  model: string;
  data: string;
  out: string;
  template: TemplateName | 'auto';
  'batch-size': number;
  normalize: boolean;
  'write-stats': boolean;
  backend: BackendName;
}

const scoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score',
  describe: 'Score a dataset with a reward model: adds "reward" (or "reward_chosen"/"reward_rejected" to preference rows)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'reward model folder (rlhf reward output: runs/<name>/reward/final)' })
      .option('data', { type: 'string', demandOption: true, describe: 'dataset to score (.jsonl, .arrow, .parquet)' })
      .option('out', { type: 'string', demandOption: true, describe: 'where to write it, with the reward columns (format by extension)' })
      .option('template', {
        choices: ['auto', 'tokenizer', 'llama2', 'chatml'] as const,
        default: 'auto' as const,
        describe: "chat template for message rows; auto = the tokenizer's own when it has one, else llama2",
      })
      .option('batch-size', { type: 'number', default: 32, describe: 'sequences per forward pass' })
      .option('normalize', { type: 'boolean', default: false, describe: "whiten rewards with the model folder's reward_stats.json" })
      .option('write-stats', { type: 'boolean', default: false, describe: "compute reward_stats.json (mean, std) from this data's rewards and write it into the model folder (a TRL / OpenRLHF reward model has none)" })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<ScoreArgs>,
  handler: async (args) => {
    await initEngine({ backend: args.backend });
    const n = await scoreFile(args.model, args.data, args.out, {
      template: args.template,
      batchSize: args['batch-size'],
      normalize: args.normalize,
      writeStats: args['write-stats'],
    });
    if (args['write-stats']) console.log(`wrote ${args.model}/reward_stats.json (mean and std of these rewards; PPO and --normalize use it)`);
    console.log(`scored ${n} rows → ${args.out}`);
  },
};

export const rewardCommand: CommandModule<object, RewardArgs> = {
  command: 'reward [overrides..]',
  describe: 'Train a reward model on preference pairs (Bradley-Terry loss with Llama 2 margins); "reward score" scores a dataset',
  builder: (y: Argv) =>
    stageOptions<RewardArgs>(y.command(scoreCommand), rewardConfigSchema, 'reward/world', { config: { global: false } }),
  handler: async (args) => {
    if (args.config === undefined) throw new UserError('rlhf reward: --config FILE is required (or use "rlhf reward score")');
    const resolved = loadStageConfig({ config: args.config, overrides: args.overrides }, 'reward', rewardConfigSchema);
    const result = await runReward(resolved);
    const acc = result.eval ? `, eval accuracy ${(100 * result.eval.accuracy).toFixed(2)}%` : '';
    console.log(`reward done: ${result.steps} steps${acc}, reward mean ${result.stats.mean.toFixed(4)} std ${result.stats.std.toFixed(4)}\nmodel: ${result.finalDir}`);
  },
};
