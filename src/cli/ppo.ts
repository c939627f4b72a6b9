/** `rlhf ppo --config FILE [k=v ...]`: optimise a LoRA policy against a reward model with PPO. */
import { ppoConfigSchema } from '../ppo/config.js';
import { runPpo } from '../ppo/recipe.js';
import { ppoWiring } from '../pipeline/stage-deps.js';
import { stageCommand } from './stage-command.js';

export const ppoCommand = stageCommand('ppo', ppoConfigSchema, {
  describe: 'PPO against a reward model (KL-penalised to the SFT reference, adaptive KL, GAE, clipped losses)',
  example: 'ppo/world_lora',
  run: async (resolved) => {
    const result = await runPpo(resolved, ppoWiring);
    const judge = result.lastEval?.['eval/judge_score'];
    const reward = result.lastEval?.['eval/reward_mean'];
    return (
      `ppo done: ${result.iterations} iterations` +
      (reward !== undefined ? `, eval reward ${reward.toFixed(4)}` : '') +
      (judge !== undefined ? `, judge score ${judge.toFixed(4)}` : '') +
      `\nadapter: ${result.finalDir}`
    );
  },
});
