/**
 * The `rs` stage's config: rejection-sampling fine-tuning (Llama 2 §3.2.3). K replies per prompt
 * from the current policy, each scored by a reward model, the best kept (optionally against a pool
 * of the best reply per prompt from earlier rounds), then fine-tuning on the kept dialogues with the
 * SFT objective (LoRA or full). Every key has a default and a help text here.
 */
import { z } from 'zod';
import { registerStageSchema } from '../config/index.js';
import { sftCommonSections, sftLoraSection, sftSection, sftTokenizerSection } from '../config/fine-tune-sections.js';

const positiveInt = () => z.number().int().min(1);

export const rsModelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/sft/final/merged')
      .describe('The current policy (HF folder): it samples the K replies and is then fine-tuned on the best ones.'),
    adapter: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('A LoRA adapter (PEFT folder) on top of model.path; it is merged into <output_dir>/input_model/ first.'),
    reward_model: z
      .string()
      .min(1)
      .default('runs/${run.name}/reward/final')
      .describe("Reward-model folder (the reward stage's final/: backbone + score.weight, tokenizer files) that scores every sample."),
  })
  .prefault({})
  .describe('Policy and reward model.');

export const rsDataSection = z
  .strictObject({
    prompts: z
      .string()
      .min(1)
      .default('data/world/prompts.jsonl')
      .describe('Prompts to sample for (TRL prompt-only rows: {prompt: text | messages} or {messages}); .jsonl, .arrow or .parquet.'),
    exclude: z
      .array(z.string().min(1))
      .default(['data/world/prompts_eval.jsonl'])
      .describe(
        'Prompt files never sampled (held-out evaluation prompts): a prompt found in one (same roles, text equal up to case and ' +
          'white space) is dropped and counted in the log, so it can never reach the training data. [] = none.',
      ),
    max_prompts: positiveInt()
      .nullable()
      .default(256)
      .describe('Sample for the first this many prompts left after exclusion; null = all.'),
    max_prompt_tokens: positiveInt()
      .default(128)
      .describe('Prompts longer than this after the chat template are skipped (counted in the log).'),
    max_length: positiveInt().default(256).describe('Longest training dialogue in tokens (prompt + kept reply); longer ones are truncated at the start.'),
    eval_split: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Kept dialogues held out (seeded) for eval loss during fine-tuning; 0 = no evaluation.'),
    eval_max_rows: positiveInt().nullable().default(200).describe('Evaluate on at most this many held-out rows; null = all.'),
  })
  .prefault({})
  .describe('Prompts and training rows.');

export const rsSection = z
  .strictObject({
    k: positiveInt().default(8).describe('Samples per prompt (Llama 2\'s K); the reward model\'s best one is kept.'),
    temperature: z
      .number()
      .gt(0)
      .default(1)
      .describe('Sampling temperature (Llama 2 Fig 8: the best temperature moves as the model is updated; re-tune it per round).'),
    top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling (1 = off).'),
    max_new_tokens: positiveInt().default(48).describe('Longest sampled reply in tokens.'),
    batch_size: positiveInt()
      .default(32)
      .describe('Sequences generated together (the K copies of ⌊batch_size / k⌋ prompts, at least one prompt); also the chunk a resumed sampling restarts at.'),
    score_batch_size: positiveInt().default(32).describe('Sequences the reward model scores together.'),
    keep_best_across_rounds: z
      .boolean()
      .default(false)
      .describe(
        "Keep a pool of the best reply per prompt over rounds (Llama 2 from RLHF-V3 on): rs.pool's replies are re-scored by this round's " +
          'reward model and compete with this round\'s best; the fine-tuning data is the merged pool, written to <output_dir>/pool.jsonl.',
      ),
    pool: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('The previous round\'s pool (its rs folder\'s pool.jsonl) with keep_best_across_rounds; null = start a fresh pool.'),
  })
  .prefault({})
  .describe('Rejection sampling: K samples per prompt, best by reward kept.');

export const SAFETY_PREPROMPT =
  'You are a safe and kind assistant. If a request could hurt a person, an animal or a thing, do not help: say Sorry, I can not help with that, and say why.';

export const contextDistillationSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Safety context distillation (Llama 2 §4.2.4), on is_safety prompts only: sample replies with a safety preprompt, score them and the prompt's " +
          'kept reply (sampled without it) with the safety reward model, and train on the preprompted reply, without the preprompt, only where the safety model scores it higher.',
      ),
    preprompt: z.string().min(1).default(SAFETY_PREPROMPT).describe('The safety preprompt added to each is_safety prompt while sampling (never trained on).'),
    placement: z
      .enum(['system', 'user_prefix'])
      .default('system')
      .describe("Where the preprompt goes: system = a system message first (joined to the prompt's own system message by a blank line); user_prefix = before the first user turn's text."),
    reward_model: z
      .string()
      .min(1)
      .default('runs/${run.name}/reward_safety/final')
      .describe('The safety reward model folder (reward.kind: safety) that decides, per prompt, whether the preprompted reply is used.'),
    k: positiveInt().default(1).describe('Replies sampled with the preprompt per is_safety prompt (at rs.temperature); the safety model\'s best competes with the kept reply.'),
  })
  .prefault({})
  .describe('Safety context distillation (Llama 2 §4.2.4): off by default.');

export const rsConfigSchema = z
  .strictObject({
    ...sftCommonSections(),
    model: rsModelSection,
    tokenizer: sftTokenizerSection,
    data: rsDataSection,
    lora: sftLoraSection,
    sft: sftSection,
    rs: rsSection,
    context_distillation: contextDistillationSection,
  })
  .superRefine((cfg, ctx) => {
    if (cfg.rs.pool !== null && !cfg.rs.keep_best_across_rounds) {
      ctx.addIssue({ code: 'custom', path: ['rs', 'pool'], message: 'is read only with rs.keep_best_across_rounds: true (set it, or pool: null)' });
    }
    if (cfg.sft.save_merged && !cfg.lora.enabled) {
      ctx.addIssue({ code: 'custom', path: ['sft', 'save_merged'], message: 'needs lora.enabled: true (full fine-tuning already writes the whole model to final/)' });
    }
    if (cfg.sft.early_stopping_patience !== null && cfg.data.eval_split === 0) {
      ctx.addIssue({ code: 'custom', path: ['sft', 'early_stopping_patience'], message: 'needs evaluation rows: set data.eval_split > 0' });
    }
  })
  .describe('Rejection-sampling fine-tuning: K samples per prompt from the policy, the reward model\'s best kept, SFT on them (LoRA or full).');

export type RsConfig = z.output<typeof rsConfigSchema>;

registerStageSchema('rs', rsConfigSchema);
