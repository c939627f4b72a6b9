/** `rlhf world eval --model DIR [--adapter DIR] --prompts FILE`: the judge's score of greedy answers. */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { loadAdapter } from '../lora/index.js';
import { loadHfModel } from '../model/index.js';
import { packagePath } from '../paths.js';
import { loadTokenizer, type TemplateName } from '../tokenizer/index.js';
import { evaluateWithGenerator, formatWorldScore } from '../world/evaluate.js';
import { greedyChatGenerator } from '../world/greedy.js';

interface WorldEvalArgs {
  model: string;
  adapter?: string;
  prompts: string;
  limit?: number;
  template: TemplateName | 'auto';
  'max-new-tokens': number;
  'batch-size': number;
  backend: BackendName;
}

const evalCommand: CommandModule<object, WorldEvalArgs> = {
  command: 'eval',
  describe: 'Mean judge score of greedy answers to a prompts file, overall and per task family',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (config.json, model.safetensors, tokenizer.json)' })
      .option('adapter', { type: 'string', describe: 'LoRA adapter folder (PEFT) to apply to the model' })
      .option('prompts', { type: 'string', default: packagePath('data', 'world', 'prompts_eval.jsonl'), describe: 'JSONL prompts file' })
      .option('limit', { type: 'number', describe: 'judge only the first N prompts' })
      .option('template', {
        choices: ['auto', 'tokenizer', 'llama2', 'chatml'] as const,
        default: 'auto' as const,
        describe: "chat template; auto = the tokenizer's own when it has one, else llama2",
      })
      .option('max-new-tokens', { type: 'number', default: 48, describe: 'longest reply in tokens' })
      .option('batch-size', { type: 'number', default: 16, describe: 'prompts generated together' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<WorldEvalArgs>,
  handler: async (args) => {
    await initEngine({ backend: args.backend });
    const tokenizer = await loadTokenizer(args.model);
    const model = loadHfModel(args.model);
    try {
      if (args.adapter !== undefined) loadAdapter(model, args.adapter);
      const template: TemplateName = args.template === 'auto' ? (tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2') : args.template;
      const generator = greedyChatGenerator(model, tokenizer, { template, maxNewTokens: args['max-new-tokens'], batchSize: args['batch-size'] });
      const score = await evaluateWithGenerator(generator, args.prompts, { limit: args.limit });
      console.log(formatWorldScore(score));
    } finally {
      model.dispose();
    }
  },
};

export const worldCommand: CommandModule = {
  command: 'world <command>',
  describe: 'The bundled assistant world: evaluate a model with the gold judge',
  builder: (y: Argv) => y.command(evalCommand).demandCommand(1),
  handler: () => {},
};
