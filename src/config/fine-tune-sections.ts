/**
 * Config sections of fine-tuning on dialogues, shared by the stages that run it: SFT itself, GAtt
 * and rejection sampling (which fine-tune on their own dialogues with the SFT objective), and DPO
 * (its tokenizer section). Each stage's schema composes them beside its recipe; a stage never
 * imports another stage's config.
 */
import { z } from 'zod';
import { commonSections } from './sections.js';

const positiveInt = () => z.number().int().min(1);

export const sftTokenizerSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('Folder with tokenizer.json (+ tokenizer_config.json); null = the model folder.'),
    template: z
      .enum(['auto', 'tokenizer', 'llama2', 'chatml'])
      .default('auto')
      .describe("Chat template: auto = the tokenizer's own chat_template when it has one, else llama2."),
  })
  .prefault({})
  .describe('Tokenizer and chat template.');

export const sftLoraSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Train LoRA adapters (true) or every weight of the model (false: full fine-tuning).'),
    r: positiveInt().default(8).describe('Adapter rank.'),
    alpha: z.number().gt(0).default(16).describe('Scaling numerator: the update is (alpha / r)·B·A (alpha / √r with use_rslora).'),
    dropout: z.number().min(0).lt(1).default(0.05).describe('Dropout on the adapter input during training.'),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
      .default(['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      .describe('Projections that get adapters: short names (q_proj … down_proj), "all-linear", or one regex over module names.'),
    use_rslora: z.boolean().default(false).describe('Rank-stabilised LoRA scaling alpha / √r.'),
  })
  .prefault({})
  .describe('LoRA adapters (PEFT-compatible).');

export const sftSection = z
  .strictObject({
    save_merged: z
      .boolean()
      .default(false)
      .describe('LoRA only: also write the merged model (adapters folded in, tokenizer files copied) to final/merged.'),
    early_stopping_patience: positiveInt()
      .nullable()
      .default(null)
      .describe('Stop after this many evaluations in a row without improving the eval loss; null = never stop early.'),
    early_stopping_min_delta: z
      .number()
      .min(0)
      .default(0)
      .describe('An eval loss must beat the best by more than this to count as an improvement.'),
  })
  .prefault({})
  .describe('SFT-specific behaviour: merged output, early stopping.');

/** The shared sections with SFT's defaults (GAtt fine-tunes with the SFT recipe and reuses them). */
export function sftCommonSections() {
  return commonSections({
    optim: { lr: 1e-3, weight_decay: 0.0, betas: [0.9, 0.999], grad_clip: 1.0 },
    schedule: { type: 'cosine', warmup_steps: 10 },
    train: { steps: 200, batch_size: 8, eval_every: 50 },
    checkpoint: { every_steps: 100, keep_last: 2 },
  });
}
