/** `rlhf sft --config FILE [k=v ...]`: supervised fine-tuning (LoRA or full) on dialogues. */
import { sftConfigSchema } from '../sft/config.js';
import { runSft } from '../sft/recipe.js';
import { stageCommand } from './stage-command.js';

export const sftCommand = stageCommand('sft', sftConfigSchema, {
  describe: 'Supervised fine-tuning on dialogues: LoRA (default) or full, loss on assistant tokens',
  example: 'sft/world_lora',
  run: async (resolved) => {
    const result = await runSft(resolved);
    const last = result.losses[result.losses.length - 1];
    return (
      `sft done: ${result.steps} steps` +
      (last ? `, final loss ${last.loss.toFixed(4)}` : '') +
      (result.evalLoss !== null ? `, eval loss ${result.evalLoss.toFixed(4)} (perplexity ${Math.exp(result.evalLoss).toFixed(2)})` : '') +
      (result.stoppedEarly ? ' (stopped early)' : '') +
      `\noutput: ${result.finalDir}`
    );
  },
});
