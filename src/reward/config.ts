/**
 * The `reward` stage's config: a reward model trained on preference pairs (Llama 2 §3.2.2). Every
 * key has a default and a help text here (they feed `--help`, `rlhf ls reward` and
 * config.resolved.yaml).
 */
import { z } from 'zod';
import { commonSections, registerStageSchema } from '../config/index.js';
import { MARGIN_KINDS } from './loss.js';
import { REWARD_KINDS } from '../model/io/reward-kind.js';

export const rewardModelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/sft/final')
      .describe(
        'Where the reward model starts: an HF model folder (SFT output, base model; a reward model keeps its score head) or a LoRA SFT output (adapter folder: merged into its base_model_name_or_path).',
      ),
    adapter: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('PEFT LoRA adapter folder (e.g. a LoRA SFT output) merged into model.path before training; null = none.'),
  })
  .prefault({})
  .describe('Backbone of the reward model.');

export const rewardTokenizerSection = z
  .strictObject({
    path: z.string().min(1).nullable().default(null).describe('Folder with tokenizer.json; null = model.path.'),
    template: z
      .enum(['auto', 'tokenizer', 'llama2', 'chatml'])
      .default('auto')
      .describe("Chat template for message rows: auto = the tokenizer's own chat_template when it has one, else llama2."),
  })
  .prefault({})
  .describe('Tokenizer and chat template.');

export const rewardDataSection = z
  .strictObject({
    train: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('data/world/preferences.jsonl')
      .describe('Preference pairs (prompt/chosen/rejected + strength or margin): .jsonl, .arrow or .parquet; a list of files is read as one set.'),
    eval: z
      .string()
      .min(1)
      .nullable()
      .default('data/world/preferences_eval.jsonl')
      .describe('Held-out pairs for eval accuracy; null = hold out data.eval_fraction of train.'),
    eval_fraction: z
      .number()
      .min(0)
      .lt(1)
      .default(0.05)
      .describe('Fraction of train held out (seeded) when data.eval is null.'),
    mix: z
      .array(z.number().gt(0))
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'Share of the training pairs drawn from each data.train file, in order (e.g. [0.9, 0.1]: Llama 2\'s safety RM on safety ' +
          'data plus 10% helpfulness data); the largest set with these shares is taken (seeded subsets). null = every pair of every file.',
      ),
    max_train_pairs: z
      .number()
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe('Train on at most this many pairs (a seeded subset); null = all.'),
    max_eval_pairs: z
      .number()
      .int()
      .min(1)
      .nullable()
      .default(null)
      .describe('Evaluate on at most this many pairs (the first ones); null = all.'),
    max_length: z
      .number()
      .int()
      .min(2)
      .default(512)
      .describe('Pairs with a side longer than this many tokens are dropped (truncating would cut the answers compared).'),
    group_by_length: z
      .boolean()
      .default(true)
      .describe('Batch pairs of similar length together (fixed seeded batches, order reshuffled each epoch): far less padding.'),
    on_bad_row: z.enum(['error', 'skip']).default('error').describe('A malformed row stops the run (error) or is skipped with a warning.'),
  })
  .prefault({})
  .describe('Preference data.');

export const rewardLoraSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Train LoRA adapters (plus the score head); false = train every weight.'),
    r: z.number().int().min(1).default(16).describe('LoRA rank.'),
    alpha: z.number().gt(0).default(32).describe('LoRA alpha (scaling = alpha / r).'),
    dropout: z.number().min(0).lt(1).default(0.05).describe('Dropout on the LoRA input.'),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
      .default('all-linear')
      .describe('Projections that get adapters: short names (q_proj, v_proj, …), "all-linear", or a regex over module names.'),
  })
  .prefault({})
  .describe('LoRA; the score head is always trained in full (modules_to_save: [score]).');

export const rewardSection = z
  .strictObject({
    kind: z
      .enum(REWARD_KINDS)
      .default('helpfulness')
      .describe('What the model scores (Llama 2 §3.2.2 trains one of each): recorded in final/reward_model.json, checked by PPO\'s reward_models.'),
    margin: z
      .enum(MARGIN_KINDS as [string, ...string[]])
      .default('small')
      .describe(
        'Margin m in −log σ(r_c − r_r − m): none; small / large = Llama 2 Table 27 by the row\'s strength ' +
          '(1, 2/3, 1/3, 0 / 3, 2, 1, 0); column = the row\'s margin column.',
      ),
    read_at: z
      .enum(['turn_end', 'last_token'])
      .default('turn_end')
      .describe(
        'Where the reward is read (recorded in the model folder\'s reward_read.json; every stage that scores honours it): ' +
          'turn_end = the last assistant turn\'s turn-end token, where PPO and the samplers stop (text a template writes ' +
          'after it, e.g. chatml\'s newline, is not read); last_token = the last token of the full rendering, as TRL does.',
      ),
    center_rewards_coefficient: z
      .number()
      .min(0)
      .default(0.01)
      .describe('Weight of mean((r_c + r_r)²), which keeps rewards centred on 0; 0 = off.'),
    eval_batch_size: z.number().int().min(1).default(32).describe('Pairs per forward pass in evaluation and reward statistics.'),
    stats_max_pairs: z
      .number()
      .int()
      .min(1)
      .nullable()
      .default(2000)
      .describe('Pairs of the training set scored for reward_stats.json (mean/std PPO normalises with); null = all.'),
  })
  .prefault({})
  .describe('Reward model objective.');

export const rewardConfigSchema = z
  .strictObject({
    ...commonSections({
      optim: { lr: 1e-3, weight_decay: 0.0, betas: [0.9, 0.999], grad_clip: 1.0 },
      schedule: { type: 'cosine', warmup_steps: 20 },
      train: { steps: 300, epochs: null, batch_size: 16, eval_every: 100 },
      checkpoint: { every_steps: 100, keep_last: 2 },
    }),
    model: rewardModelSection,
    tokenizer: rewardTokenizerSection,
    data: rewardDataSection,
    lora: rewardLoraSection,
    reward: rewardSection,
  })
  .describe('Train a reward model (backbone + scalar head) on preference pairs with the Bradley-Terry loss.');

export type RewardConfig = z.output<typeof rewardConfigSchema>;

registerStageSchema('reward', rewardConfigSchema);
