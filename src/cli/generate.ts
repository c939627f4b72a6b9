/**
 * `rlhf generate --model DIR [--adapter DIR] --prompt "..." [--prompt ...] [--chat] [--template NAME]
 *   [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--json]`
 * Defaults for sampling come from the model's generation_config.json (greedy unless do_sample).
 */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { Rng } from '../engine/rng.js';
import { generateText, generationDefaults } from '../generation/text.js';
import { loadAdapter } from '../lora/index.js';
import { loadHfConfig, loadHfModel } from '../model/io/hf.js';
import { estimatePeakMemory } from '../training/memory.js';
import { checkMemoryFits, memoryLimits } from '../training/memory-check.js';
import { loadTokenizer, type TemplateName } from '../tokenizer/index.js';

interface GenerateArgs {
  model: string;
  adapter?: string;
  prompt: string[];
  chat: boolean;
  template: TemplateName;
  'max-new-tokens'?: number;
  'min-new-tokens': number;
  temperature?: number;
  'top-k'?: number;
  'top-p'?: number;
  seed: number;
  json: boolean;
  backend: BackendName;
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'Generate completions from an HF Llama folder (optionally with a LoRA adapter)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'model folder (config.json, model.safetensors, tokenizer.json)' })
      .option('adapter', { type: 'string', describe: 'PEFT LoRA adapter folder to apply' })
      .option('prompt', { type: 'string', array: true, demandOption: true, describe: 'prompt text (repeat for a batch)' })
      .option('chat', { type: 'boolean', default: false, describe: 'wrap each prompt as a user turn with the chat template' })
      .option('template', { choices: ['tokenizer', 'llama2', 'chatml'] as const, default: 'tokenizer' as const, describe: 'chat template for --chat (tokenizer = its chat_template)' })
      .option('max-new-tokens', { type: 'number', describe: 'tokens to generate (default: generation_config.json, else 64)' })
      .option('min-new-tokens', { type: 'number', default: 0, describe: 'no stop token before this many' })
      .option('temperature', { type: 'number', describe: '0 = greedy (default: generation_config.json, else greedy)' })
      .option('top-k', { type: 'number', describe: 'keep the k most likely tokens (0 = off)' })
      .option('top-p', { type: 'number', describe: 'nucleus sampling mass (1 = off)' })
      .option('seed', { type: 'number', default: 0, describe: 'sampling seed' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per prompt: prompt, completion, prompt_ids, completion_ids' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<GenerateArgs>,
  handler: async (args) => {
    const engine = await initEngine({ backend: args.backend });
    const defaults = generationDefaults(args.model);
    // Fail before, not during: weights, KV cache and one layer's activations for the whole batch.
    const config = loadHfConfig(args.model);
    checkMemoryFits('generate', estimatePeakMemory({
      config,
      batchSize: args.prompt.length,
      seqLen: Math.min(config.max_position_embeddings, 512 + (args['max-new-tokens'] ?? defaults.maxNewTokens)),
      trained: { kind: 'none' },
      frozenFloat32: true,
      lossChunkRows: args.prompt.length,
    }), memoryLimits(engine.backend), [{ key: '--prompt (fewer at once)', value: args.prompt.length }], (m) => void process.stderr.write(m + '\n'));
    // Inference only: frozen float32 weights mapped from the file (no copy onto the heap; docs/engine.md).
    const model = loadHfModel(args.model, { frozenFloat32: true });
    const tokenizer = await loadTokenizer(args.model);
    if (args.adapter) loadAdapter(model, args.adapter);
    const results = generateText(model, tokenizer, args.prompt, {
      maxNewTokens: args['max-new-tokens'] ?? defaults.maxNewTokens,
      minNewTokens: args['min-new-tokens'],
      temperature: args.temperature ?? defaults.temperature,
      topK: args['top-k'] ?? defaults.topK,
      topP: args['top-p'] ?? defaults.topP,
      rng: new Rng(args.seed),
      ...(args.chat ? { chatTemplate: args.template } : {}),
    });
    for (const r of results) {
      console.log(args.json ? JSON.stringify(r) : `### ${r.prompt}\n${r.completion}\n`);
    }
    model.dispose();
  },
};
