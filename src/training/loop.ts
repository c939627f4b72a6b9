/**
 * The training loop every stage runs, with the loop's policies in one place; a recipe brings its
 * setup and a step function:
 *
 *   const result = await trainLoop({
 *     label: 'sft', run, startStep, totalSteps, maxNonfinite: cfg.train.max_nonfinite,
 *     evalEvery: cfg.train.eval_every, checkpointEvery: cfg.checkpoint.every_steps,
 *     step: (s) => ({ loss, gradNorm, tokens, apply: () => opt.step(grads, lr), metrics: { 'train/lr': lr } }),
 *     evaluate: () => ({ 'eval/loss': … }),
 *     checkpoint: (s) => saveStageCheckpoint(run.dir, { … step: s … }),
 *   });
 *
 * Per step, in this order: the step function (forward, backward, gradients ready) → the non-finite
 * guard (a non-finite loss or gradient norm skips the update; `maxNonfinite` in a row abort) → the
 * update → metrics (`train/loss`, `train/grad_norm`, `train/tokens_per_sec` and the step's own) →
 * evaluation every `evalEvery` steps → tracking and progress → a checkpoint every `checkpointEvery`
 * steps → a stop signal (SIGINT/SIGTERM) writes a checkpoint and ends the run with StageStopped →
 * early stopping. After the last step: an evaluation if the last step had none, and a checkpoint
 * if the last step had none (the final state is resumable too, to train further).
 */
import { join } from 'node:path';
import { ConsoleProgress, type ProgressStream } from '../tracking/progress.js';
import { NonFiniteGuard } from './nan-guard.js';

export type Metrics = Record<string, number>;
type MaybePromise<T> = T | Promise<T>;

/** What one optimizer step computed, before the update is applied. */
export interface UpdateStep {
  /** The step's mean loss. */
  loss: number;
  /** Global gradient norm (after clipping, as the update sees it). */
  gradNorm: number;
  /** Tokens the step processed, for `train/tokens_per_sec`; omit where the stage counts none. */
  tokens?: number;
  /** The optimizer update; called only when the loss and the gradient norm are finite. */
  apply(): void;
  /** The step's own figures under their final names (`train/lr`, TRL's `rewards/chosen`, …). */
  metrics?: Metrics;
  /** After the update (or its skip): free the gradients. */
  release?(): void;
}

/**
 * A step that ran several optimizer updates of its own (a PPO iteration: epochs × minibatches),
 * each checked by the guard the loop handed it; the loop logs its figures as they are.
 */
export interface UpdatedStep {
  updated: true;
  metrics: Metrics;
}

export type StepOutcome = UpdateStep | UpdatedStep;

/** What the loop needs of the run folder: a tracker, the stop signal, the stopped error. */
export interface LoopRun {
  readonly dir: string;
  readonly tracker: { logMetrics(metrics: Metrics, step: number): Promise<void> };
  readonly stop: { poll(): Promise<boolean> };
  stoppedError(step: number, checkpoint: string): Error;
}

export interface LoopSpec {
  /** Stage name: progress label and log prefix. */
  label: string;
  run: LoopRun;
  /** Optimizer steps already done (a resumed run). */
  startStep: number;
  totalSteps: number;
  /** `train.max_nonfinite`: abort after this many non-finite steps in a row. */
  maxNonfinite: number;
  /** Evaluate every this many steps; 0 = only at the end. */
  evalEvery: number;
  /** Checkpoint every this many steps; 0 = only at the end (and on a stop signal). */
  checkpointEvery: number;
  /**
   * One step; `step` is the number of steps done before it. A step that applies updates itself
   * checks each with `guard` (one non-finite policy for every stage).
   */
  step(step: number, guard: NonFiniteGuard): MaybePromise<StepOutcome>;
  /** Evaluate (and log at step 0) before the first step of a fresh run: the starting point. */
  evalAtStart?: boolean;
  /** Held-out figures (`eval/…`), or null when there is nothing to evaluate. */
  evaluate?(step: number): MaybePromise<Metrics | null>;
  /** Write `checkpoints/step_<step>` and return its path. */
  checkpoint(step: number): string;
  /** After an evaluation: a reason to stop early (SFT's early stopping), or null to go on. */
  stopEarly?(evalMetrics: Metrics, step: number): string | null;
  /** Progress lines: shown name → metric key (e.g. `{ loss: 'train/loss' }`); null = no progress. */
  progress?: { keys: Record<string, string>; stream?: ProgressStream } | null;
  /** After each step's metrics are logged (tests send a stop signal from here). */
  onStep?(step: number, metrics: Metrics): void;
  log(message: string): void;
}

/** The loop's cadence keys, as every stage config spells them. */
export interface LoopCadenceSettings {
  train: { max_nonfinite: number; eval_every: number };
  checkpoint: { every_steps: number };
}

/** `train.max_nonfinite`, `train.eval_every` and `checkpoint.every_steps` as the loop takes them. */
export function loopCadence(cfg: LoopCadenceSettings): Pick<LoopSpec, 'maxNonfinite' | 'evalEvery' | 'checkpointEvery'> {
  return { maxNonfinite: cfg.train.max_nonfinite, evalEvery: cfg.train.eval_every, checkpointEvery: cfg.checkpoint.every_steps };
}

export interface LoopResult {
  /** Optimizer steps done in total. */
  step: number;
  /** Training loss of each step this invocation ran. */
  losses: Array<{ step: number; loss: number }>;
  /** The last evaluation's figures (null when the stage evaluates nothing). */
  lastEval: Metrics | null;
  /** Why training stopped before totalSteps, or null. */
  stoppedEarly: string | null;
}

export async function trainLoop(spec: LoopSpec): Promise<LoopResult> {
  const { run, totalSteps, log } = spec;
  const guard = new NonFiniteGuard(spec.maxNonfinite);
  const shown = spec.progress?.keys ?? {};
  const progress = spec.progress
    ? new ConsoleProgress({
        total: totalSteps,
        label: spec.label,
        startStep: spec.startStep,
        keys: Object.keys(shown),
        ...(spec.progress.stream ? { stream: spec.progress.stream } : {}),
      })
    : null;
  const losses: LoopResult['losses'] = [];
  let step = spec.startStep;
  let lastEval: Metrics | null = null;
  let lastEvalStep = -1;
  let lastCheckpointStep = spec.startStep > 0 ? spec.startStep : -1;
  let stoppedEarly: string | null = null;
  const evaluate = async (): Promise<Metrics | null> => {
    const ev = spec.evaluate ? await spec.evaluate(step) : null;
    lastEvalStep = step;
    if (ev) lastEval = ev;
    return ev;
  };
  /** The guard's verdict, then the update or its skip; the step's generic figures. */
  const applyUpdate = (out: UpdateStep, stepNo: number): Metrics => {
    let finite: boolean;
    try {
      finite = guard.check(stepNo, out.loss, out.gradNorm); // throws after maxNonfinite in a row
      if (finite) out.apply();
      else log(`${spec.label}: step ${stepNo}: non-finite loss ${out.loss} or grad norm ${out.gradNorm}; update skipped`);
    } finally {
      out.release?.();
    }
    const metrics: Metrics = { 'train/loss': out.loss, 'train/grad_norm': out.gradNorm, ...out.metrics };
    if (!finite) metrics['train/skipped_nonfinite'] = guard.totalSkips;
    return metrics;
  };
  const checkpoint = (): string => {
    lastCheckpointStep = step;
    return spec.checkpoint(step);
  };

  try {
    if (spec.evalAtStart && step === 0 && spec.evaluate) {
      // The starting point; not counted as a step's evaluation, so the last step still gets its own.
      lastEval = await spec.evaluate(0);
      if (lastEval) await run.tracker.logMetrics(lastEval, 0);
    }
    while (step < totalSteps && stoppedEarly === null) {
      const started = performance.now();
      const out = await spec.step(step, guard);
      const metrics: Metrics = 'updated' in out ? { ...out.metrics } : applyUpdate(out, step + 1);
      step++;
      if (!('updated' in out)) {
        if (out.tokens !== undefined) metrics['train/tokens_per_sec'] = out.tokens / Math.max((performance.now() - started) / 1000, 1e-9);
        losses.push({ step, loss: out.loss });
      }
      if (spec.evalEvery > 0 && step % spec.evalEvery === 0) {
        const ev = await evaluate();
        if (ev) {
          Object.assign(metrics, ev);
          stoppedEarly = spec.stopEarly?.(ev, step) ?? null;
        }
      }
      await run.tracker.logMetrics(metrics, step);
      progress?.update(step, Object.fromEntries(Object.entries(shown).filter(([, k]) => metrics[k] !== undefined).map(([name, k]) => [name, metrics[k]!])));
      spec.onStep?.(step, metrics);

      if (spec.checkpointEvery > 0 && step % spec.checkpointEvery === 0) checkpoint();
      if (step < totalSteps && stoppedEarly === null && (await run.stop.poll())) {
        const path = lastCheckpointStep === step ? join(run.dir, 'checkpoints', `step_${step}`) : checkpoint();
        throw run.stoppedError(step, path);
      }
    }
    progress?.stop();
    if (stoppedEarly !== null) log(`${spec.label}: stopping early at step ${step}: ${stoppedEarly}`);
    if (lastEvalStep !== step) {
      const ev = await evaluate();
      if (ev) await run.tracker.logMetrics(ev, step);
    }
    if (lastCheckpointStep !== step) checkpoint();
    return { step, losses, lastEval, stoppedEarly };
  } finally {
    progress?.stop();
  }
}
