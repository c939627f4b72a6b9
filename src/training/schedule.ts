/**
 * Learning-rate schedules as Hugging Face `transformers` defines them (`get_constant_schedule_with_warmup`,
 * `get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`): a multiplier of the peak
 * lr as a function of the number of updates already done (`step` = 0 for the first update, so
 * with warmup the first update uses lr 0, exactly as in HF).
 */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  warmupSteps: number;
  totalSteps: number;
  /** Cosine only: number of half-periods ×2, HF's `num_cycles` (default 0.5 = decay to 0 once). */
  numCycles?: number;
}

/** Multiplier in [0, 1] applied to the peak learning rate at `step`. */
export function lrMultiplier(kind: ScheduleKind, step: number, opts: ScheduleOptions): number {
  const { warmupSteps, totalSteps } = opts;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  switch (kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const numCycles = opts.numCycles ?? 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
  }
}

/** The learning rate for the update numbered `step` (0-based). */
export function learningRateAt(kind: ScheduleKind, peakLr: number, step: number, opts: ScheduleOptions): number {
  return peakLr * lrMultiplier(kind, step, opts);
}

/** Optimizer steps of a run: train.epochs over `batchesPerEpoch` micro-batches (grad_accum per step), else train.steps. */
export function stepsOfRun(train: { epochs: number | null; steps: number }, batchesPerEpoch: number, gradAccum: number): number {
  return train.epochs !== null ? Math.max(1, Math.ceil((train.epochs * batchesPerEpoch) / gradAccum)) : train.steps;
}
