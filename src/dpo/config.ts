/**
 * The `dpo` stage's config: direct preference optimisation of a policy on preference pairs, with
 * TRL 1.x's loss variants, argument names and defaults where they apply (`beta`, `loss_type`,
 * `loss_weights`, `label_smoothing`, `precompute_ref_log_probs`). Every key has its default and
 * help text here and nowhere else.
 */
import { z } from 'zod';
import { commonSections, registerStageSchema } from '../config/index.js';
import { sftTokenizerSection } from '../config/fine-tune-sections.js';
import { STRENGTHS } from '../data/schemas.js';
import { DPO_LOSS_TYPES, type DpoLossType } from './loss.js';

const positiveInt = () => z.number().int().min(1);

/** `loss_type` as a list (TRL also takes one name). */
export function lossTypes(d: { loss_type: DpoLossType | DpoLossType[] }): DpoLossType[] {
  return typeof d.loss_type === 'string' ? [d.loss_type] : d.loss_type;
}

/** `loss_weights`, or 1 per loss. */
export function lossWeights(d: { loss_type: DpoLossType | DpoLossType[]; loss_weights: number[] | null }): number[] {
  return d.loss_weights ?? lossTypes(d).map(() => 1);
}

const modelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/sft/final/merged')
      .describe('The model DPO starts from (an HF folder, e.g. the merged SFT model); it is also the frozen reference.'),
    adapter: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('A PEFT adapter (e.g. a LoRA SFT output) merged into model.path first, so it is part of both policy and reference; null = none.'),
  })
  .prefault({})
  .describe('Policy and reference model.');

const dataSection = z
  .strictObject({
    train: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('data/world/preferences.jsonl')
      .describe('Preference pairs (prompt/chosen/rejected, TRL columns; strength optional): .jsonl, .arrow or .parquet; a list of files is read as one set.'),
    eval: z
      .string()
      .min(1)
      .nullable()
      .default('data/world/preferences_eval.jsonl')
      .describe('Held-out pairs (eval/rewards/…, eval/loss); null = hold out data.eval_fraction of train.'),
    eval_fraction: z.number().min(0).lt(1).default(0.05).describe('Fraction of train held out (seeded) when data.eval is null.'),
    max_train_pairs: positiveInt().nullable().default(null).describe('Train on at most this many pairs (a seeded subset); null = all.'),
    max_eval_pairs: positiveInt().nullable().default(256).describe('Evaluate on at most this many held-out pairs (the first ones); null = all.'),
    max_length: z
      .number()
      .int()
      .min(2)
      .default(512)
      .describe('Pairs with a side (prompt + reply) longer than this many tokens are dropped (cutting one would compare part of a reply).'),
    eval_prompts: z
      .string()
      .min(1)
      .nullable()
      .default('data/world/prompts_eval.jsonl')
      .describe('Held-out prompts answered greedily and scored by a judge, when one is given (eval/judge_score); null = none.'),
    eval_limit: positiveInt().nullable().default(64).describe('Answer at most this many held-out prompts (the first ones); null = all.'),
    on_bad_row: z.enum(['error', 'skip']).default('error').describe('A malformed row stops the run (error) or is skipped with a warning.'),
  })
  .prefault({})
  .describe('Preference data and held-out prompts.');

const loraSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Train LoRA adapters (the reference is the same backbone with adapters off) or, false, every weight (the reference is a frozen copy).'),
    r: positiveInt().default(16).describe('Adapter rank.'),
    alpha: z.number().gt(0).default(32).describe('Scaling numerator: the update is (alpha / r)·B·A.'),
    dropout: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('Dropout on the adapter input. Above 0 the policy differs from the reference before any update (training forward only).'),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
      .default('all-linear')
      .describe('Projections that get adapters: short names (q_proj … down_proj), "all-linear", or one regex over module names.'),
  })
  .prefault({})
  .describe('LoRA adapters (PEFT-compatible).');

const strengthWeights = z
  .strictObject(Object.fromEntries(STRENGTHS.map((s) => [s, z.number().min(0).describe(`Weight of a ${s} pair.`)])) as Record<(typeof STRENGTHS)[number], z.ZodNumber>);

const dpoSection = z
  .strictObject({
    beta: z
      .number()
      .gt(0)
      .default(0.1)
      .describe('β: how far the policy may move from the reference (implicit reward = β·log π/π_ref); for ipo the regularisation τ.'),
    loss_type: z
      .union([z.enum(DPO_LOSS_TYPES), z.array(z.enum(DPO_LOSS_TYPES)).min(1)])
      .default(['sigmoid'])
      .describe(
        'Losses, summed with loss_weights (TRL 1.x names): sigmoid (DPO), ipo (log-ratios averaged over reply length), hinge, ' +
          'robust (rDPO with label_smoothing), apo_zero, sft (NLL of the chosen reply).',
      ),
    loss_weights: z
      .array(z.number().min(0))
      .min(1)
      .nullable()
      .default(null)
      .describe('One weight per entry of loss_type; null = 1 each.'),
    label_smoothing: z
      .number()
      .min(0)
      .lt(0.5)
      .default(0)
      .describe('ε of the robust loss: the assumed share of pairs whose preference label is flipped.'),
    precompute_ref_log_probs: z
      .boolean()
      .default(false)
      .describe('Compute the reference log-probs of every pair once before training (no reference forward per step; full fine-tuning then holds no frozen copy).'),
    strength_weights: strengthWeights
      .nullable()
      .default(null)
      .describe('Weight each pair\'s loss by its Llama 2 strength level (needs a strength column); null = strength ignored.'),
    eval_batch_size: positiveInt().default(32).describe('Pairs per forward pass in evaluation and reference precomputation.'),
  })
  .prefault({})
  .superRefine((d, ctx) => {
    const types = lossTypes(d);
    if (d.loss_weights !== null && d.loss_weights.length !== types.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['loss_weights'],
        message: `has ${d.loss_weights.length} weights but dpo.loss_type has ${types.length} losses (one weight each)`,
      });
    }
    const repeated = types.filter((t, i) => types.indexOf(t) !== i);
    if (repeated.length > 0) ctx.addIssue({ code: 'custom', path: ['loss_type'], message: `lists ${repeated.join(', ')} twice` });
  })
  .describe('The DPO objective.');

const evalSection = z
  .strictObject({
    judge: z.boolean().default(true).describe('Answer data.eval_prompts greedily and score them with the world\'s gold judge (eval/judge_score).'),
    max_new_tokens: positiveInt().default(48).describe('Longest held-out answer in tokens.'),
    batch_size: positiveInt().default(32).describe('Prompts answered together.'),
  })
  .prefault({})
  .describe('Held-out evaluation on prompts.');

export const dpoConfigSchema = z
  .strictObject({
    ...commonSections({
      optim: { lr: 5e-4, weight_decay: 0.0, betas: [0.9, 0.999], grad_clip: 1.0 },
      schedule: { type: 'cosine', warmup_steps: 10 },
      train: { steps: 200, batch_size: 8, eval_every: 50 },
      checkpoint: { every_steps: 50, keep_last: 2 },
    }),
    model: modelSection,
    tokenizer: sftTokenizerSection,
    data: dataSection,
    lora: loraSection,
    dpo: dpoSection,
    eval: evalSection,
    save_merged: z.boolean().default(true).describe('LoRA only: also write the merged policy (base + adapter) as an HF folder in final/merged.'),
  })
  .describe('Direct preference optimisation (DPO and its TRL variants) of a policy on preference pairs, against a frozen reference.');

export type DpoConfig = z.output<typeof dpoConfigSchema>;

registerStageSchema('dpo', dpoConfigSchema);
