/** `rlhf merge-lora --model BASE --adapter DIR --out DIR`: fold a PEFT LoRA adapter into its base model. */
import type { Argv, CommandModule } from 'yargs';
import { initEngine, type BackendName } from '../engine/index.js';
import { mergeAdapterFolder } from '../lora/merge.js';
import { loadHfConfig } from '../model/io/hf.js';
import { estimatePeakMemory } from '../training/memory.js';
import { checkMemoryFits, memoryLimits } from '../training/memory-check.js';

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
    const engine = await initEngine({ backend: args.backend });
    // Fail before, not during: the merge holds the float32 base on the tensor heap, and a copy in JS while saving.
    const estimate = estimatePeakMemory({ config: loadHfConfig(args.model), batchSize: 1, seqLen: 1, trained: { kind: 'none' }, lossChunkRows: 'none' });
    const weights = estimate.items.find((i) => i.what.startsWith('weights'))!.bytes;
    checkMemoryFits('merge-lora', { ...estimate, hostBytes: estimate.hostBytes + weights, totalBytes: estimate.totalBytes + weights },
      memoryLimits(engine.backend), [{ key: '--backend', value: args.backend, suggest: 'tensorflow (no 4 GiB heap; needs @tensorflow/tfjs-node)' }],
      (m) => void process.stderr.write(m + '\n'));
    const { config, mergedModules } = mergeAdapterFolder(args.model, args.adapter, args.out, { dtype: args.dtype });
    console.log(`merged ${mergedModules} LoRA modules (r=${config.r}, alpha=${config.lora_alpha}) into ${args.out}`);
  },
};
