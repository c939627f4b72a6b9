/** The SFT config GAtt's fine-tuning step runs with: GAtt's shared sections, the synthesised rows, loss on the last turn. */
import type { ResolvedConfig } from '../config/index.js';
import type { GattConfig } from './config.js';

/** The SFT stage's config for the fine-tuning step: this config's shared sections, the synthesised data, train_on_last. */
export function sftConfigFor(
  resolved: ResolvedConfig<GattConfig>,
  input: { modelDir: string; tokenizerDir: string },
  trainFile: string,
): ResolvedConfig<GattSftConfig> {
  return { stage: 'sft', config: sftConfigOf(resolved.config, input, trainFile), file: resolved.file, overrides: resolved.overrides };
}

/**
 * The config object itself; its type is what the fine-tuning step receives. The wiring hands in the
 * SFT recipe, so the typecheck there proves this object is a complete SFT config.
 */
function sftConfigOf(cfg: GattConfig, input: { modelDir: string; tokenizerDir: string }, trainFile: string) {
  const { gatt: _gatt, model: _model, data, tokenizer, ...shared } = cfg;
  return {
    ...shared,
    model: { path: input.modelDir, frozen_dtype: 'float32' as const },
    tokenizer: { path: input.tokenizerDir, template: tokenizer.template },
    data: {
      train: trainFile,
      eval: null,
      eval_split: data.eval_split,
      eval_max_rows: data.eval_max_rows,
      strategy: 'train_on_last' as const,
      max_length: data.max_length,
      // Rows were trimmed to max_length at synthesis; should one still be longer, keep its trained end.
      truncation: 'keep_end' as const,
      packing: data.packing,
      on_bad_row: 'error' as const,
    },
  };
}

/** The SFT config GAtt fine-tunes with. */
export type GattSftConfig = ReturnType<typeof sftConfigOf>;

