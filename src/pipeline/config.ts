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
