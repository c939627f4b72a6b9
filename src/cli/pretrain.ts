/** `rlhf pretrain --config FILE [k=v ...]`: train a base Llama from scratch on a text corpus. */
import { pretrainConfigSchema } from '../pretrain/config.js';
import { runPretrain } from '../pretrain/recipe.js';
import { stageCommand } from './stage-command.js';

export const pretrainCommand = stageCommand('pretrain', pretrainConfigSchema, {
  describe: 'Pretrain a base Llama from scratch on a text corpus (tokenizer, packing, causal LM loss)',
  example: 'pretrain/world_tiny',
  run: async (resolved) => {
    const result = await runPretrain(resolved);
    const last = result.losses[result.losses.length - 1];
    const lastEval = result.evalLosses[result.evalLosses.length - 1];
    return (
      `pretrain done: ${result.totalSteps} steps` +
      (last ? `, final loss ${last.loss.toFixed(4)}` : '') +
      (lastEval ? `, eval loss ${lastEval.loss.toFixed(4)}` : '') +
      (Number.isFinite(result.tokensPerSecond) ? `, ${Math.round(result.tokensPerSecond)} tokens/s` : '') +
      `\nmodel: ${result.finalDir}`
    );
  },
});
