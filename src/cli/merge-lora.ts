/** `rlhf merge-lora --model BASE --adapter DIR --out DIR`: fold a PEFT LoRA adapter into its base model. */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { mergeAdapterFolder } from '../lora/merge.js';

interface MergeLoraArgs {
  model: string;
  adapter: string;
  out: string;
  dtype: 'F32' | 'BF16';
  backend: BackendName;
}

export const mergeLoraCommand: CommandModule<object, MergeLoraArgs> = {
  command: 'merge-lora',
  describe: 'Merge a LoRA adapter (PEFT folder) into its base model and save a plain HF model folder',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'base model folder (config.json, model.safetensors)' })
      .option('adapter', { type: 'string', demandOption: true, describe: 'adapter folder (adapter_config.json, adapter_model.safetensors)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder for the merged model (tokenizer files are copied from --model)' })
      .option('dtype', { choices: ['F32', 'BF16'] as const, default: 'F32' as const, describe: 'weight dtype on disk' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu', 'tensorflow'] as const, default: 'auto' as const, describe: 'TF.js backend' }) as unknown as Argv<MergeLoraArgs>,
  handler: async (args) => {
    await initEngine({ backend: args.backend });
    const { config, mergedModules } = mergeAdapterFolder(args.model, args.adapter, args.out, { dtype: args.dtype });
    console.log(`merged ${mergedModules} LoRA modules (r=${config.r}, alpha=${config.lora_alpha}) into ${args.out}`);
  },
};
