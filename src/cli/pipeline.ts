/** `rlhf pipeline --config FILE [--force STAGE] [k=v ...]`: every stage in order, then the report. */
import type { Argv, CommandModule } from 'yargs';
import { findConfig, loadConfig, schemaHelpText } from '../config/index.js';
import { matmulStartupNote } from '../engine/blas/index.js';
import { pipelineConfigSchema } from '../pipeline/config.js';
import { judgeModels } from '../pipeline/evaluate.js';
import { runPipeline } from '../pipeline/runner.js';
import { realRounds, realStages } from '../pipeline/stages.js';

interface PipelineArgs {
  config: string;
  force: string[];
  overrides: string[];
}

export const pipelineCommand: CommandModule<object, PipelineArgs> = {
  command: 'pipeline [overrides..]',
  describe: 'Run pretrain → SFT → reward → PPO → GAtt → evaluation from one config, then write the report',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', demandOption: true, describe: 'Pipeline config file, or a shipped name (e.g. pipeline/world)' })
      .option('force', { type: 'string', array: true, default: [], describe: 'Redo a finished stage (and the ones after it): pretrain, sft, reward, ppo, gatt, eval or all' })
      .positional('overrides', { type: 'string', array: true, default: [], describe: 'key.sub=value to set (e.g. stages.sft.overrides.train.steps=50), ~key to delete' })
      .epilogue(schemaHelpText(pipelineConfigSchema)) as unknown as Argv<PipelineArgs>,
  handler: async (args) => {
    const resolved = loadConfig(findConfig(args.config), args.overrides.map(String), { stage: 'pipeline', schema: pipelineConfigSchema });
    // First line of `npm start`: the matmul library, or how to get a faster one than the fallback.
    process.stderr.write(`${await matmulStartupNote()}\n`);
    await runPipeline(resolved, { stages: realStages(), rounds: realRounds(), evaluate: judgeModels, force: args.force.map(String) });
  },
};
