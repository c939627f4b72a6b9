/**
 * The `ppo` stage config: the shared sections plus the policy/reward models, LoRA, PPO, rewards,
 * KL control, generation and evaluation. Defaults and help live here and nowhere else.
 */
import { z } from 'zod';
import {
  checkpointSection,
  engineSection,
  optimSection,
  outputDirField,
  registerStageSchema,
  runSection,
  scheduleSection,
  trackingSection,
} from '../config/index.js';
import { COMBINE_RULES, LLAMA2_SAFETY_THRESHOLD } from './combine-rewards.js';
import { KL_ESTIMATORS } from './kl.js';

const positiveInt = () => z.number().int().min(1);

/** Where PPO's critic comes from (see ppo.critic's help). */
export const PPO_CRITICS = ['reward_model', 'reward_model_lora', 'policy_head'] as const;
export type PpoCritic = (typeof PPO_CRITICS)[number];

const modelSection = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('runs/${run.name}/sft/final/merged')
      .describe('The SFT model (HF folder): the policy starts from it and, with adapters disabled, it is the frozen reference.'),
    adapter: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('A PEFT adapter (e.g. a LoRA SFT output) merged into model.path before PPO; null when model.path is already the SFT model.'),
    reward_model: z
      .union([
        z.string().min(1),
        z.strictObject({
          helpfulness: z.string().min(1).describe('The helpfulness reward model (also the value model\'s start).'),
          safety: z.string().min(1).describe('The safety reward model.'),
        }),
      ])
      .default('runs/${run.name}/reward/final')
      .describe(
        'Reward model (HF folder with score.weight; reward_stats.json {mean, std} is used for normalisation), or a named set ' +
          '{helpfulness: FOLDER, safety: FOLDER} combined by rewards.combine (Llama 2 §3.2.3).',
      ),
  })
  .prefault({})
  .describe('Policy, reference and reward models.');

const tokenizerSection = z
  .strictObject({
    path: z.string().min(1).nullable().default(null).describe('Folder with tokenizer.json; null = model.path.'),
    template: z
      .enum(['auto', 'tokenizer', 'llama2', 'chatml'])
      .default('auto')
      .describe("Chat template that renders prompts: auto = the tokenizer's own chat_template when it has one, else llama2."),
  })
  .prefault({})
  .describe('Tokenizer and chat template.');

const dataSection = z
  .strictObject({
    prompts: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .default('data/world/prompts.jsonl')
      .describe(
        "Training prompts: JSONL, Arrow or Parquet rows {prompt: text | messages} or {messages} (TRL columns; is_safety: true marks Llama 2's " +
          "safety prompts); a list of files is read as one set; a relative path not found here is the package's shipped data.",
      ),
    eval_prompts: z
      .string()
      .min(1)
      .nullable()
      .default('data/world/prompts_eval.jsonl')
      .describe('Held-out prompts for evaluation; null = no evaluation.'),
    eval_limit: z.number().int().min(1).nullable().default(64).describe('Evaluate on at most this many held-out prompts; null = all.'),
    max_prompt_tokens: positiveInt().default(128).describe('Prompts longer than this (after the chat template) are an error naming the row.'),
  })
  .prefault({})
  .describe('Prompt data.');

const loraSection = z
  .strictObject({
    r: positiveInt().default(8).describe('LoRA rank of the policy adapters (and of the critic\'s with ppo.critic: reward_model_lora).'),
    alpha: z.number().gt(0).default(16).describe('LoRA alpha (scaling alpha / r).'),
    dropout: z
      .number()
      .refine((v) => v === 0, {
        message:
          'must be 0 in PPO: dropout makes the importance ratio differ from 1 before any update, and its masks are not ' +
          'part of the checkpointed random state, so a resumed run would not be exact',
      })
      .default(0)
      .describe('LoRA dropout: must be 0 in PPO (dropout makes π_new ≠ π_old before any update and breaks exact resume).'),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.literal('all-linear')])
      .default(['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      .describe('Projections that get adapters (list of module names, or all-linear).'),
  })
  .prefault({})
  .describe('LoRA policy: the reference is the same backbone with adapters disabled (ppo.critic: reward_model_lora puts the same adapters on the reward model).');

const trainSection = z
  .strictObject({
    steps: positiveInt().default(200).describe('PPO iterations (each: one rollout, then ppo.ppo_epochs passes over it).'),
    rollout_batch_size: z.number().int().min(2).default(16).describe('Prompts sampled per iteration.'),
    resume: z
      .string()
      .min(1)
      .default('auto')
      .describe('auto: continue from the newest checkpoint in output_dir if there is one; never: start fresh; or a checkpoint folder path.'),
    eval_every: z.number().int().min(0).default(20).describe('Evaluate on the held-out prompts every this many iterations (and before the first and after the last); 0 = only before and after.'),
    sample_every: z.number().int().min(0).default(10).describe('Write a table of sample generations every this many iterations; 0 = never.'),
    sample_count: positiveInt().default(4).describe('Rows in each sample table.'),
    seed: z.number().int().min(0).nullable().default(null).describe('Seed of the prompt order; null = engine.seed.'),
    max_nonfinite: positiveInt().default(5).describe('Abort after this many minibatches in a row with a non-finite loss or gradient.'),
  })
  .prefault({})
  .describe('PPO loop.');

const ppoSection = z
  .strictObject({
    mini_batch_size: positiveInt().default(4).describe('Sequences per forward/backward micro-batch; an optimizer step takes optim.grad_accum of them, losses being token means over all (mini_batch_size × grad_accum must divide train.rollout_batch_size).'),
    ppo_epochs: positiveInt().default(4).describe('Passes over each rollout.'),
    clip_range: z.number().gt(0).default(0.2).describe('ε of the clipped surrogate: the ratio is clipped to [1 − ε, 1 + ε].'),
    clip_range_value: z.number().gt(0).default(0.2).describe('ε_v of value clipping: new values stay within V_old ± ε_v in the clipped term.'),
    vf_coef: z.number().min(0).default(0.1).describe('Weight of the value loss.'),
    entropy_coef: z.number().min(0).default(0).describe('Weight of the entropy bonus (0 = none).'),
    gamma: z.number().min(0).max(1).default(1).describe('Discount γ of GAE.'),
    lam: z.number().min(0).max(1).default(0.95).describe('λ of GAE.'),
    target_kl: z
      .number()
      .gt(0)
      .nullable()
      .default(null)
      .describe('Stop updating on a rollout once a minibatch\'s approx-KL (½·mean(log ρ)²) exceeds this; null = never.'),
    ratio_threshold: z
      .number()
      .gt(1)
      .nullable()
      .default(10)
      .describe('Skip (and log) a minibatch whose mean ratio π_new/π_old exceeds this; null = never.'),
    critic: z
      .enum(PPO_CRITICS)
      .default('reward_model')
      .describe(
        'reward_model: a separate value model initialised from the reward model, trained in full; reward_model_lora: the reward ' +
          "model's own frozen weights with LoRA adapters (the lora section's settings) and a value head started from its score head " +
          '(rewards are read with the adapters off and the original head: one copy of the weights serves both); policy_head: a value head on the policy.',
      ),
  })
  .prefault({})
  .describe('PPO optimisation.');

const rewardsSection = z
  .strictObject({
    kl_estimator: z.enum(KL_ESTIMATORS).default('k1').describe('Per-token KL estimator of the penalty: k1, k3, abs or mse.'),
    normalize: z.boolean().default(true).describe('Normalise scores with the reward model\'s reward_stats.json (mean, std); a reward model without one (trained by TRL or OpenRLHF) is refused: write it with rlhf reward score --write-stats, or set false.'),
    clip: z.number().gt(0).nullable().default(null).describe('Clamp (normalised) scores to [−clip, clip]; null = no clamp.'),
    missing_eos_penalty: z
      .number()
      .min(0)
      .nullable()
      .default(null)
      .describe('Subtracted from the score of a response that ran out of tokens without EOS; null = none.'),
    whiten: z.boolean().default(false).describe('Whiten per-token rewards (scale only) before GAE.'),
    combine: z
      .enum(COMBINE_RULES)
      .default('single')
      .describe(
        'single: the one reward model\'s score; llama2: the safety score on is_safety prompts or where σ(safety) < safety_threshold, ' +
          'else the helpfulness score, then logit and whitening over the batch (Llama 2 §3.2.3; needs model.reward_model {helpfulness, safety}).',
      ),
    safety_threshold: z
      .number()
      .gt(0)
      .lt(1)
      .default(LLAMA2_SAFETY_THRESHOLD)
      .describe('combine: llama2 — a reply whose safety score (normalised, in sigmoid space) is below this is scored by the safety model.'),
  })
  .prefault({})
  .describe('Reward shaping: score at the last token minus β·KL per token.');

const klSection = z
  .strictObject({
    controller: z.enum(['adaptive', 'fixed']).default('adaptive').describe('fixed β, or the adaptive controller of Ziegler et al.'),
    init_coef: z.number().min(0).default(0.05).describe('Initial (or fixed) KL coefficient β.'),
    target: z.number().gt(0).default(6).describe('Adaptive: target KL per sequence (summed over tokens).'),
    horizon: z.number().gt(0).default(10000).describe('Adaptive: horizon in episodes; β moves by at most 20%·n/horizon per update.'),
  })
  .prefault({})
  .describe('KL coefficient control.');

const generationSection = z
  .strictObject({
    max_new_tokens: positiveInt().default(48).describe('Response length limit in the rollout and evaluation.'),
    temperature: z.number().gt(0).default(1).describe('Sampling temperature of the rollout; the policy is softmax(logits / temperature).'),
    eval_batch_size: positiveInt().default(16).describe('Prompts per batch in greedy evaluation.'),
  })
  .prefault({})
  .describe('Sampling (no top-k / top-p: PPO must sample from the policy it optimises).');

const evalSection = z
  .strictObject({
    judge: z.boolean().default(true).describe('Score held-out answers with the world\'s gold judge (eval/judge_score).'),
  })
  .prefault({})
  .describe('Held-out evaluation.');

export const ppoConfigSchema = z.strictObject({
  run: runSection,
  output_dir: outputDirField,
  engine: engineSection,
  tracking: trackingSection,
  checkpoint: checkpointSection({ every_steps: 20, keep_last: 2 }),
  optim: optimSection({ lr: 1e-4, weight_decay: 0, grad_clip: 1.0 }),
  schedule: scheduleSection({ type: 'constant' }),
  train: trainSection,
  model: modelSection,
  tokenizer: tokenizerSection,
  data: dataSection,
  lora: loraSection,
  ppo: ppoSection,
  rewards: rewardsSection,
  kl: klSection,
  generation: generationSection,
  eval: evalSection,
  save_merged: z.boolean().default(true).describe('Also write the merged policy (base + adapter) as an HF folder in final/merged.'),
});

export type PpoConfig = z.output<typeof ppoConfigSchema>;

registerStageSchema('ppo', ppoConfigSchema);
