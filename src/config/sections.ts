/**
 * Reusable config sections that stage schemas compose. Every key has a default and a help text:
 * the schema is the only place defaults and help live (`--help`, the README tables and
 * `config.resolved.yaml` all read them from here).
 *
 *   const sftConfig = z.strictObject({ ...commonSections({ optim: { lr: 2e-4 } }), lora: loraSection });
 *
 * Sections use `.prefault({})` so a missing section is filled from its keys' defaults.
 */
import { z } from 'zod';

export const runSection = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'use letters, digits, ".", "_" and "-" only (it names a folder)')
      .default('default')
      .describe('Run name: names the run folder (runs/<name>/) and, by default, the tracked run.'),
  })
  .prefault({})
  .describe('Which run this stage belongs to.');

export const outputDirField = z
  .string()
  .min(1)
  .default('runs/${run.name}/${stage}')
  .describe('Folder for this stage: config.resolved.yaml, metrics.jsonl, checkpoints/, final/.');

export const engineSection = z
  .strictObject({
    backend: z
      .enum(['auto', 'wasm', 'cpu', 'tensorflow'])
      .default('auto')
      .describe(
        'TF.js backend: auto (tensorflow if @tensorflow/tfjs-node is installed, else wasm), wasm, cpu (slow reference) or tensorflow (tfjs-node / tfjs-node-gpu).',
      ),
    threads: z
      .number()
      .int()
      .min(1)
      .default(1)
      .describe('Compute threads. wasm and cpu run one thread under Node; for several cores use the tensorflow backend.'),
    seed: z.number().int().min(0).default(0).describe('Seed of the run\'s random source: weight init, dropout, sampling.'),
  })
  .prefault({})
  .describe('Tensor backend and randomness.');

export const trackingSection = z
  .strictObject({
    uri: z
      .string()
      .min(1)
      .default('mlruns')
      .describe('MLflow tracking: a folder (MLflow file store) or the http(s):// URL of an MLflow server.'),
    experiment: z.string().min(1).default('Default').describe('MLflow experiment name (created if missing).'),
    run_name: z.string().min(1).default('${run.name}').describe('MLflow run name.'),
    enabled: z.boolean().default(true).describe('Log params and metrics to MLflow (metrics.jsonl is always written).'),
  })
  .prefault({})
  .describe('Experiment tracking.');

export interface CheckpointDefaults {
  every_steps: number;
  keep_last: number | null;
}

export function checkpointSection(d: Partial<CheckpointDefaults> = {}) {
  return z
    .strictObject({
      every_steps: z
        .number()
        .int()
        .min(0)
        .default(d.every_steps ?? 500)
        .describe('Save a checkpoint every this many optimizer steps; 0 = only the final one.'),
      keep_last: z
        .number()
        .int()
        .min(1)
        .nullable()
        .default(d.keep_last === undefined ? 3 : d.keep_last)
        .describe('Keep only the newest this many checkpoints; null keeps all.'),
    })
    .prefault({})
    .describe('Checkpoints under <output_dir>/checkpoints/.');
}

export interface OptimDefaults {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  grad_clip: number | null;
  grad_accum: number;
}

export function optimSection(d: Partial<OptimDefaults> = {}) {
  const beta = z.number().min(0).lt(1);
  return z
    .strictObject({
      lr: z.number().gt(0).default(d.lr ?? 3e-4).describe('Peak learning rate (reached after warmup).'),
      betas: z
        .tuple([beta, beta])
        .default(d.betas ?? [0.9, 0.95])
        .describe('AdamW beta1, beta2.'),
      eps: z.number().gt(0).default(d.eps ?? 1e-8).describe('AdamW epsilon.'),
      weight_decay: z.number().min(0).default(d.weight_decay ?? 0.1).describe('AdamW decoupled weight decay.'),
      grad_clip: z
        .number()
        .gt(0)
        .nullable()
        .default(d.grad_clip === undefined ? 1.0 : d.grad_clip)
        .describe('Clip the global gradient norm to this value; null = no clipping.'),
      grad_accum: z
        .number()
        .int()
        .min(1)
        .default(d.grad_accum ?? 1)
        .describe('Micro-batches accumulated per optimizer step.'),
    })
    .prefault({})
    .describe('AdamW optimizer.');
}

export interface ScheduleDefaults {
  type: 'cosine' | 'linear' | 'constant';
  warmup_steps: number;
}

export function scheduleSection(d: Partial<ScheduleDefaults> = {}) {
  return z
    .strictObject({
      type: z
        .enum(['cosine', 'linear', 'constant'])
        .default(d.type ?? 'cosine')
        .describe('Learning-rate decay after warmup.'),
      warmup_steps: z
        .number()
        .int()
        .min(0)
        .default(d.warmup_steps ?? 0)
        .describe('Linear warmup from 0 to optim.lr over this many steps.'),
    })
    .prefault({})
    .describe('Learning-rate schedule.');
}

export interface TrainDefaults {
  steps: number;
  epochs: number | null;
  batch_size: number;
  eval_every: number;
}

export function trainSection(d: Partial<TrainDefaults> = {}) {
  return z
    .strictObject({
      steps: z.number().int().min(1).default(d.steps ?? 1000).describe('Optimizer steps to train for.'),
      epochs: z
        .number()
        .gt(0)
        .nullable()
        .default(d.epochs === undefined ? null : d.epochs)
        .describe('Passes over the training data; when set, it replaces steps.'),
      batch_size: z.number().int().min(1).default(d.batch_size ?? 8).describe('Examples per micro-batch.'),
      resume: z
        .string()
        .min(1)
        .default('auto')
        .describe(
          'auto: continue from the newest checkpoint in output_dir if there is one; never: start fresh; or a checkpoint folder path.',
        ),
      eval_every: z
        .number()
        .int()
        .min(0)
        .default(d.eval_every ?? 100)
        .describe('Evaluate every this many steps; 0 = only at the end.'),
      seed: z
        .number()
        .int()
        .min(0)
        .nullable()
        .default(null)
        .describe('Seed of the data order (shuffling); null = engine.seed.'),
      max_nonfinite: z
        .number()
        .int()
        .min(1)
        .default(5)
        .describe('Abort after this many optimizer steps in a row with a non-finite loss or gradient (each one is skipped and logged).'),
      gradient_checkpointing: z
        .union([z.boolean(), z.literal('auto')])
        .default('auto')
        .describe(
          'Keep only each decoder layer\'s input and recompute the layer in the backward pass: activation memory drops ' +
            'from every layer\'s to one layer\'s, for about a third more compute (as HF\'s gradient_checkpointing). ' +
            'auto: on only when the memory estimate says the run cannot fit without it (the gradients are the same either way).',
        ),
    })
    .prefault({})
    .describe('Training loop.');
}

/** The sections every training stage shares; spread them into a stage's `z.strictObject({...})`. */
export function commonSections(
  d: {
    optim?: Partial<OptimDefaults>;
    schedule?: Partial<ScheduleDefaults>;
    train?: Partial<TrainDefaults>;
    checkpoint?: Partial<CheckpointDefaults>;
  } = {},
) {
  return {
    run: runSection,
    output_dir: outputDirField,
    engine: engineSection,
    tracking: trackingSection,
    checkpoint: checkpointSection(d.checkpoint),
    optim: optimSection(d.optim),
    schedule: scheduleSection(d.schedule),
    train: trainSection(d.train),
  };
}
