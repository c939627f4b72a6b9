/**
 * `rlhf rs --config FILE [k=v ...]`: rejection-sampling fine-tuning (K samples per prompt from the
 * policy, the reward model's best kept, SFT on them). With --judge (default), the bundled world's
 * gold judge compares the best, median and first sample (best_of_k.json).
 */
import type { Argv, CommandModule } from 'yargs';
import { rsConfigSchema } from '../rs/config.js';
import { runRs, type ReplyJudge } from '../rs/recipe.js';
import { judgeResponses } from '../world/index.js';
import { loadStageConfig, stageOptions } from './stage-command.js';

interface RsArgs {
  config: string;
  overrides: string[];
  judge: boolean;
}

/** The world's gold judge as the stage takes it: one score per reply. */
export const worldJudge: ReplyJudge = (prompts, replies) => judgeResponses(prompts, replies).scores;

export const rsCommand: CommandModule<object, RsArgs> = {
  command: 'rs [overrides..]',
  describe: 'Rejection-sampling fine-tuning: K samples per prompt, the reward model\'s best kept, SFT on them (LoRA or full)',
  builder: (y: Argv) =>
    stageOptions<RsArgs>(y, rsConfigSchema, 'rs/world_lora', {
      more: (o) =>
        o.option('judge', {
          type: 'boolean',
          default: true,
          describe: "compare the best, median and first sample with the bundled world's gold judge (prompts that are not world requests score 0); --no-judge: skip",
        }),
    }),
  handler: async (args) => {
    const resolved = loadStageConfig(args, 'rs', rsConfigSchema);
    const result = await runRs(resolved, args.judge ? { judge: worldJudge } : {});
    const curve = result.bestOfK.curve.map((p) => `K=${p.k} max ${p.reward_max.toFixed(3)} median ${p.reward_median.toFixed(3)}`).join(', ');
    const judge = result.bestOfK.judge;
    const last = result.losses[result.losses.length - 1];
    console.log(
      `rs done: ${result.kept} kept dialogues (${result.fromPool} from the pool), ${result.steps} steps` +
        (last ? `, final loss ${last.loss.toFixed(4)}` : '') +
        `\nbest of K: ${curve}` +
        (judge ? `\ngold judge: best ${judge.best.toFixed(3)}, median ${judge.median.toFixed(3)}, first ${judge.first.toFixed(3)}, judge's own best of K ${judge.oracle.toFixed(3)}` : '') +
        `\npool: ${result.poolPath}\noutput: ${result.finalDir}`,
    );
  },
};
