/**
 * The `pipeline` config: which stages run, each one's config (a stage config file and/or keys set
 * inline), the base model when pretraining is off, the final evaluation and the report.
 *
 *   stage: pipeline
 *   run: { name: world }
 *   base_model: data/world/base
 *   stages:
 *     pretrain: { enabled: false }
 *     sft: { config: configs/sft/tiny_lora.yaml, overrides: { train: { steps: 300 } } }
 */
import { z } from 'zod';
import { registerStageSchema, runSection, trackingSection } from '../config/index.js';

export const PIPELINE_STAGES = ['pretrain', 'sft', 'reward', 'reward_safety', 'ppo', 'dpo', 'gatt'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

function stageEntry(stage: PipelineStage, enabledByDefault: boolean) {
  return z
    .strictObject({
      enabled: z.boolean().default(enabledByDefault).describe(`Run the ${stage} stage (false: use its existing output, or skip what needs it).`),
      config: z
        .string()
        .min(1)
        .nullable()
        .default(null)
        .describe(`A ${stage} config file or shipped name (e.g. ${stage}/…); null: the ${stage} schema's defaults.`),
      overrides: z
        .record(z.string(), z.unknown())
        .default({})
        .describe(
          `Keys of the ${stage} config set on top of \`config\`, nested or dotted (\`train: {steps: 100}\` or \`train.steps: 100\`). ` +
            'The pipeline sets run.name, output_dir, tracking and the input models itself.',
        ),
    })
    .prefault({})
    .describe(`The ${stage} stage.`);
}

/** A stage run inside each round: its config (null: the top-level stage's) and overrides on top of the top-level stage's. */
function roundStageEntry(stage: 'reward' | 'rs' | 'ppo', fallback: string) {
  return {
    config: z
      .string()
      .min(1)
      .nullable()
      .default(stage === 'rs' ? 'rs/world_lora' : null)
      .describe(`The ${stage} config file or shipped name for each round; null: ${fallback}.`),
    overrides: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        `Keys of the ${stage} config set in every round${stage === 'rs' ? '' : `, on top of stages.${stage}.overrides`}, nested or dotted. ` +
          'The rounds set output_dir, tracking and the input models themselves.',
      ),
    by_round: z
      .record(z.string().regex(/^[1-9][0-9]*$/, 'a round number (1, 2, …)'), z.record(z.string(), z.unknown()))
      .default({})
      .describe(
        `Keys of the ${stage} config set in one round only, on top of rounds.${stage}.overrides, by round number: ` +
          "{'1': {optim.lr: 1.0e-3}} (Llama 2 Fig 8: settings are re-tuned as the model changes from round to round).",
      ),
  };
}

export const roundsSection = z
  .strictObject({
    count: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Iterative rounds after the stages before GAtt (Llama 2 RLHF-V1…V5), each in runs/<name>/round_<k>/: sample pairs from the latest policy → ' +
          'annotate (the world\'s judge) → retrain the reward model on all pairs so far → rejection sampling → PPO in rounds.ppo.rounds → judge. 0 = none.',
      ),
    pairs: z
      .strictObject({
        prompts: z.string().min(1).default('data/world/prompts.jsonl').describe('Prompts the fresh pairs are sampled for (TRL prompt-only rows).'),
        exclude: z
          .array(z.string().min(1))
          .default(['data/world/prompts_eval.jsonl'])
          .describe('Prompt files never sampled; eval.prompts is always excluded as well.'),
        per_round: z
          .number()
          .int()
          .min(1)
          .default(256)
          .describe('Prompts per round: round k takes the k-th block of this many of the prompts left after exclusion (wrapping around), so each round sees fresh prompts.'),
        temperature: z.number().gt(0).default(1).describe('Sampling temperature of reply A.'),
        temperature_b: z.number().gt(0).default(0.7).describe('Sampling temperature of reply B (Llama 2 varied temperatures between the two replies).'),
        top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling of both replies (1 = off).'),
        max_new_tokens: z.number().int().min(1).default(48).describe('Longest reply in tokens.'),
        batch_size: z.number().int().min(1).default(32).describe('Prompts generated together.'),
        seed: z.number().int().min(0).default(0).describe('Seed of the sampling; round k samples with seed + k.'),
        backend: z
          .enum(['auto', 'wasm', 'cpu', 'tensorflow'])
          .default('auto')
          .describe('TF.js backend of the pair sampling and the staleness scoring.'),
        eval_fraction: z
          .number()
          .min(0)
          .lt(1)
          .default(0.2)
          .describe("Share of each round's labelled pairs held out of reward training (seeded): the reward model's accuracy on them before and after retraining is the report's staleness measure."),
      })
      .prefault({})
      .describe('Fresh preference pairs from the latest policy, two replies per prompt at two temperatures.'),
    annotate: z
      .strictObject({
        noise: z.number().min(0).max(0.5).default(0).describe("Probability the world's annotator prefers the worse reply (seeded)."),
      })
      .prefault({})
      .describe("Labelling the pairs with the world's gold judge (rlhf world annotate)."),
    reward: z
      .strictObject({
        ...roundStageEntry('reward', 'stages.reward.config'),
        from: z
          .enum(['previous', 'sft'])
          .default('previous')
          .describe("Where each round's reward model starts: previous = the last reward model (continued training), sft = the SFT model (a fresh head)."),
        keep_original: z
          .boolean()
          .default(true)
          .describe("Train on the reward config's data.train as well as every round's new pairs so far; false: the rounds' pairs only."),
        pairs_weight: z
          .number()
          .int()
          .min(1)
          .default(1)
          .describe("Each round's labelled pairs are listed this many times in data.train: oversamples the few on-policy pairs against keep_original's large set; 1 = once."),
      })
      .prefault({})
      .describe("Each round's reward model, retrained on all pairs so far."),
    rs: z.strictObject(roundStageEntry('rs', 'the rs schema\'s defaults')).prefault({}).describe("Each round's rejection-sampling fine-tuning (rlhf rs)."),
    pool_from: z
      .number()
      .int()
      .min(2)
      .nullable()
      .default(2)
      .describe("From this round on, rejection sampling keeps the best reply per prompt of all earlier rounds too (Llama 2 from RLHF-V3 on); null = each round's samples only."),
    ppo: z
      .strictObject({
        ...roundStageEntry('ppo', 'stages.ppo.config'),
        rounds: z
          .array(z.number().int().min(1))
          .default([])
          .describe('The rounds that add PPO on top of the rejection-sampled model (Llama 2: the last one); [] = none.'),
      })
      .prefault({})
      .describe('PPO inside the rounds.'),
    eval: z
      .boolean()
      .default(true)
      .describe("Judge each round's models (rs, and ppo where it ran) with the eval settings: runs/<name>/round_<k>/eval/<model>.json."),
  })
  .superRefine((rounds, ctx) => {
    // A setting for a round that never runs would be silently ignored.
    for (const stage of ['reward', 'rs', 'ppo'] as const) {
      for (const k of Object.keys(rounds[stage].by_round)) {
        if (Number(k) > rounds.count) {
          ctx.addIssue({ code: 'custom', path: [stage, 'by_round', k], message: `round ${k} does not run (rounds.count is ${rounds.count})` });
        }
      }
    }
  })
  .prefault({})
  .describe('Iterative rounds with fresh preferences (Llama 2 §3.2.3).');

export type RoundsConfig = z.output<typeof roundsSection>;

export const pipelineConfigSchema = z
  .strictObject({
    run: runSection,
    output_dir: z
      .string()
      .min(1)
      .default('runs/${run.name}')
      .describe('Run folder: one sub-folder per stage, eval/, report.md, report.html, report/.'),
    tracking: trackingSection,
    base_model: z
      .string()
      .min(1)
      .default('data/world/base')
      .describe('HF model folder SFT starts from when the pretrain stage is disabled (a relative path not found here is looked up in the package).'),
    stages: z
      .strictObject({
        pretrain: stageEntry('pretrain', false),
        sft: stageEntry('sft', true),
        reward: stageEntry('reward', true),
        // Llama 2's second reward model (a reward config with reward.kind: safety); PPO then gets {helpfulness, safety}.
        reward_safety: stageEntry('reward_safety', false),
        ppo: stageEntry('ppo', true),
        dpo: stageEntry('dpo', false),
        gatt: stageEntry('gatt', true),
      })
      .prefault({})
      .describe('The stages, run in this order.'),
    rounds: roundsSection,
    eval: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Judge the base, SFT, PPO, DPO and GAtt models on the same held-out prompts at the end.'),
        prompts: z.string().min(1).default('data/world/prompts_eval.jsonl').describe('Held-out prompts (JSONL, `prompt` as messages or text).'),
        limit: z.number().int().min(1).nullable().default(64).describe('Judge only the first this many prompts; null = all.'),
        safety_prompts: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe('Safety prompts (harmful and borderline, e.g. data/world/prompts_safety_eval.jsonl): each eval/<model>.json gains violation_rate and false_refusal_rate; null = none.'),
        safety_limit: z.number().int().min(1).nullable().default(null).describe('Answer only the first this many safety prompts; null = all.'),
        max_new_tokens: z.number().int().min(1).default(48).describe('Longest answer in tokens (greedy decoding).'),
        batch_size: z.number().int().min(1).default(16).describe('Prompts answered together.'),
        samples: z.number().int().min(0).default(3).describe('Answers per model shown in the report.'),
        backend: z
          .enum(['auto', 'wasm', 'cpu', 'tensorflow'])
          .default('auto')
          .describe('TF.js backend of the evaluation.'),
      })
      .prefault({})
      .describe('Final evaluation with the world\'s gold judge.'),
    report: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Write report.md / report.html with plots, and print the summary.'),
      })
      .prefault({})
      .describe('The run report.'),
  })
  .describe('Run pretrain → SFT → reward → PPO (and/or DPO) → GAtt → evaluation, each stage reading the previous one\'s output.');

export type PipelineConfig = z.output<typeof pipelineConfigSchema>;

registerStageSchema('pipeline', pipelineConfigSchema);
