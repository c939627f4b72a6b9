/**
 * The `sft` stage's config: supervised fine-tuning of a causal LM on dialogues, with LoRA (default)
 * or in full. Every key has a default and a help text here (they feed `--help`, `rlhf ls sft` and
 * config.resolved.yaml).
 */
import { z } from 'zod';
import { registerStageSchema } from '../config/index.js';
import { sftCommonSections, sftLoraSection, sftSection, sftTokenizerSection } from '../config/fine-tune-sections.js';

export { sftCommonSections, sftLoraSection, sftSection, sftTokenizerSection } from '../config/fine-tune-sections.js';

const positiveInt = () => z.number().int().min(1);

export const sftModelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/pretrain/final')
      .describe('HF model folder to fine-tune (config.json + model.safetensors), e.g. the pretrain stage\'s final/, or a hub id (org/name[@revision]) already in the local Hugging Face cache (never downloaded).'),
    frozen_dtype: z
      .enum(['float32', 'bfloat16'])
      .default('float32')
      .describe(
        'How the frozen base weights (embeddings, LM head, projections) are kept under LoRA: bfloat16 halves their memory ' +
          'and keeps them off the 4 GiB wasm heap; each product still runs in float32 (the weight is upcast per use).',
      ),
  })
  .prefault({})
  .describe('The model to fine-tune.');

export const sftDataSection = z
  .strictObject({
    train: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('data/world/sft.jsonl')
      .describe(
        'Training rows (TRL columns: messages, or prompt/completion, or text). Format from the extension: ' +
          '.jsonl, .arrow, .parquet; a list of files is read as one set. A relative path not found from the working directory is looked up inside the package.',
      ),
    eval: z
      .string()
      .min(1)
      .nullable()
      .default('data/world/sft_eval.jsonl')
      .describe('Held-out rows for eval loss and perplexity; null = hold out data.eval_split rows of train.'),
    eval_split: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('With data.eval null: rows of train held out (seeded) for evaluation; 0 = no evaluation.'),
    eval_max_rows: positiveInt()
      .nullable()
      .default(200)
      .describe('Evaluate on at most this many eval rows (the first ones); null = all.'),
    strategy: z
      .enum(['train_on_assistant', 'train_on_all', 'train_on_last'])
      .default('train_on_assistant')
      .describe('Which tokens get loss: every assistant turn, every token, or only the last assistant turn.'),
    max_length: positiveInt().default(256).describe('Longest example in tokens; longer ones are truncated.'),
    truncation: z
      .enum(['keep_start', 'keep_end'])
      .default('keep_start')
      .describe('Which end of a too-long example is kept.'),
    packing: z
      .boolean()
      .default(false)
      .describe(
        'Pack several examples into each row of max_length tokens: position ids restart per example and attention ' +
          'stays inside each example (block-diagonal causal mask), so every example\'s loss is its unpacked loss.',
      ),
    on_bad_row: z
      .enum(['error', 'skip'])
      .default('error')
      .describe('A row that does not fit the schema: error (list the bad rows and stop) or skip (warn and drop).'),
  })
  .prefault({})
  .describe('Dialogues and how they become training rows.');

export const sftConfigSchema = z
  .strictObject({
    ...sftCommonSections(),
    model: sftModelSection,
    tokenizer: sftTokenizerSection,
    data: sftDataSection,
    lora: sftLoraSection,
    sft: sftSection,
  })
  // Options that contradict each other: each problem is located at the key that asks for too much.
  .superRefine((cfg, ctx) => {
    if (cfg.sft.save_merged && !cfg.lora.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['sft', 'save_merged'],
        message: 'needs lora.enabled: true (full fine-tuning already writes the whole model to final/)',
      });
    }
    if (cfg.model.frozen_dtype === 'bfloat16' && !cfg.lora.enabled) {
      ctx.addIssue({ code: 'custom', path: ['model', 'frozen_dtype'], message: 'bfloat16 keeps frozen weights; full fine-tuning (lora.enabled: false) trains every weight in float32' });
    }
    if (cfg.model.frozen_dtype === 'bfloat16' && cfg.sft.save_merged) {
      ctx.addIssue({
        code: 'custom',
        path: ['sft', 'save_merged'],
        message: 'merging needs the float32 base: with model.frozen_dtype: bfloat16, save the adapter and run `rlhf merge-lora` on final/',
      });
    }
    if (cfg.sft.early_stopping_patience !== null && cfg.data.eval === null && cfg.data.eval_split === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['sft', 'early_stopping_patience'],
        message: 'needs evaluation data: set data.eval to a file or data.eval_split > 0',
      });
    }
  })
  .describe('Supervised fine-tuning on dialogues: cross-entropy on assistant tokens, LoRA or full.');

export type SftConfig = z.output<typeof sftConfigSchema>;

registerStageSchema('sft', sftConfigSchema);
