/**
 * How one machine's batch and step counts become a cluster's: pure arithmetic, shared by the TRL
 * and OpenRLHF generators.
 *
 * rlhf-kit's optimizer step sees `batch_size × grad_accum` examples; the engines split that global
 * batch over GPUs (per-device micro-batches × accumulation × GPUs).
 */
import { UserError } from '../errors.js';

export interface BatchLayout {
  /** Examples per optimizer step, over all GPUs (ours: batch_size × grad_accum). */
  global: number;
  /** Examples per forward pass on one GPU. */
  perDevice: number;
  /** Micro-batches accumulated per optimizer step on each GPU. */
  accumulation: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Split `global` examples per step over `gpus`: the per-device micro-batch is the largest that
 * divides both our micro-batch and each GPU's share, so the global batch is kept exactly.
 */
export function batchLayout(batchSize: number, gradAccum: number, gpus: number, key = 'train.batch_size'): BatchLayout {
  const global = batchSize * gradAccum;
  if (global % gpus !== 0) {
    throw new UserError(
      `${key} × optim.grad_accum = ${global} examples per step cannot be split evenly over --gpus ${gpus}; ` +
        `choose a GPU count that divides ${global}, or change ${key}`,
    );
  }
  const share = global / gpus;
  const perDevice = gcd(batchSize, share);
  return { global, perDevice, accumulation: share / perDevice };
}

/** OpenRLHF counts epochs over a dataset capped at `max_samples` rows, not optimizer steps. */
export interface EpochPlan {
  maxSamples: number;
  epochs: number;
  /** Optimizer steps that plan gives: epochs × ⌊min(rows, maxSamples) / global⌋. */
  steps: number;
  /** Whether the cap cuts the data (then the rows are shuffled first, so the cap is a random subset). */
  truncates: boolean;
}

/**
 * `steps` optimizer steps of `global` examples over `rows` rows: exact when they fit in one
 * pass (`max_samples = steps × global`, one epoch), else whole epochs over every row, rounded.
 */
export function epochPlan(steps: number, global: number, rows: number): EpochPlan {
  const wanted = steps * global;
  if (wanted <= rows) return { maxSamples: wanted, epochs: 1, steps, truncates: wanted < rows };
  const epochs = Math.max(1, Math.round(wanted / rows));
  return { maxSamples: rows, epochs, steps: epochs * Math.floor(rows / global), truncates: false };
}

/** Warmup as a fraction of the run, as OpenRLHF's `lr_warmup_ratio` takes it. */
export function warmupRatio(warmupSteps: number, steps: number): number {
  return steps > 0 ? Math.min(1, warmupSteps / steps) : 0;
}
