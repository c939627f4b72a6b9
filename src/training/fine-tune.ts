/**
 * Fine-tuning a causal LM on collated token batches, as SFT and rejection sampling both do it:
 * the trainable weights (LoRA adapters or every weight) with their checkpoint I/O and AdamW, the
 * harness loop's step / evaluate / early-stopping parts, and the final folder. A recipe brings its
 * data, its run folder and its checkpoint extras.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataCursor, type CursorState, type TokenBatch } from '../data/index.js';
import type { Rng } from '../engine/rng.js';
import { injectLora, mergeLora, saveAdapter, trainableVariables, withAdaptersDisabled } from '../lora/index.js';
import { configToJson, saveHfModel, type LlamaModel } from '../model/index.js';
import { copyTokenizerFiles } from '../tokenizer/files.js';
import { accumulateGradients, GradientAccumulator } from './accumulation.js';
import { AdamW } from './adamw.js';
import { clipGradNormInPlace } from './clip.js';
import { updateEarlyStopping, type EarlyStoppingState } from './early-stopping.js';
import { loopCadence, trainLoop, type LoopCadenceSettings, type LoopResult, type LoopSpec } from './loop.js';
import { adapterWeights, resumeStage, saveStageCheckpoint, variableWeights, type StageRun, type WeightsIO } from './run.js';
import { learningRateAt, stepsOfRun, type ScheduleKind } from './schedule.js';
import { batchLossSum, batchTargets, evaluateLoss } from './sft-loss.js';

/** The config sections fine-tuning reads (SFT's and rejection sampling's schemas both have them). */
export interface FineTuneSettings {
  lora: { enabled: boolean; r: number; alpha: number; dropout: number; target_modules: string[] | string; use_rslora: boolean };
  optim: { lr: number; betas: [number, number]; eps: number; weight_decay: number; grad_clip: number | null; grad_accum: number };
  schedule: { type: ScheduleKind; warmup_steps: number };
  sft: { early_stopping_patience: number | null; early_stopping_min_delta: number; save_merged: boolean };
}

/**
 * Run a constructor inside `tf.tidy`: LoraLinear and AdamW leave behind the tensors their variables
 * were made from (`tf.variable(tf.zeros(...))`); variables themselves survive a tidy.
 */
export function withoutStrayTensors<T>(make: () => T): T {
  let made: T | undefined;
  tf.tidy(() => void (made = make()));
  return made!;
}

/** AdamW over `params` with the optim section's betas, eps and weight decay. */
export function makeAdamW(params: Map<string, tf.Variable>, o: { betas: [number, number]; eps: number; weight_decay: number }): AdamW {
  return withoutStrayTensors(() => new AdamW(params, { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay }));
}

/** Every weight of `model` trained: a checkpoint of them is a loadable HF folder (config.json + tokenizer files). */
export function fullModelWeights(model: LlamaModel, tokenizerDir: string): WeightsIO {
  return variableWeights(model.params, {
    writeExtra: (dir) => {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(configToJson(model.config), null, 2) + '\n');
      copyTokenizerFiles(tokenizerDir, dir);
    },
  });
}

export interface Trainable {
  lora: boolean;
  params: Map<string, tf.Variable>;
  /** How the trainable weights go into a checkpoint: a PEFT adapter, or a loadable HF folder. */
  weights: WeightsIO;
  optimizer: AdamW;
}

/** The sections {@link makeTrainable} reads (DPO's lora section has no use_rslora). */
export interface TrainableSettings {
  lora: Omit<FineTuneSettings['lora'], 'use_rslora'> & { use_rslora?: boolean };
  optim: FineTuneSettings['optim'];
}

/**
 * LoRA adapters injected (or every weight trainable), the checkpoint I/O and AdamW over them; an
 * adapter records `dirs.modelDir` as its base. SFT, rs and DPO train their policy through it.
 */
export function makeTrainable(model: LlamaModel, cfg: TrainableSettings, rng: Rng, dirs: { modelDir: string; tokenizerDir: string }): Trainable {
  const lora = cfg.lora.enabled;
  if (lora) {
    withoutStrayTensors(() =>
      injectLora(model, {
        targetModules: cfg.lora.target_modules,
        r: cfg.lora.r,
        alpha: cfg.lora.alpha,
        dropout: cfg.lora.dropout,
        useRslora: cfg.lora.use_rslora ?? false,
        rng,
        dropoutRng: rng,
      }),
    );
  }
  const params = lora ? trainableVariables(model) : model.params;
  const weights = lora ? adapterWeights(model, { baseModelNameOrPath: dirs.modelDir }) : fullModelWeights(model, dirs.tokenizerDir);
  const optimizer = makeAdamW(params, cfg.optim);
  return { lora, params, weights, optimizer };
}

/**
 * The loop's step (next-token loss on `grad_accum` micro-batches from `nextBatch`, token-mean over
 * the whole step), held-out loss and early stopping on it. `early` is read and updated in place so
 * checkpoints carry it.
 */
function fineTuneLoopParts(opts: {
  model: LlamaModel;
  trainable: Trainable;
  cfg: FineTuneSettings;
  totalSteps: number;
  nextBatch: () => TokenBatch;
  epoch: () => number;
  evalBatches: readonly TokenBatch[];
  early: { state: EarlyStoppingState };
}): Pick<LoopSpec, 'step' | 'evaluate' | 'stopEarly'> {
  const { model, trainable, cfg, early } = opts;
  const accumulator = new GradientAccumulator();
  return {
    step: (done) => {
      const micro = Array.from({ length: cfg.optim.grad_accum }, opts.nextBatch);
      const targets = micro.reduce((n, b) => n + batchTargets(b), 0);
      const tokens = micro.reduce((n, b) => n + b.attentionMask.flat().reduce((s, m) => s + m, 0), 0);
      const lr = learningRateAt(cfg.schedule.type, cfg.optim.lr, done, { warmupSteps: cfg.schedule.warmup_steps, totalSteps: opts.totalSteps });
      const { loss } = accumulateGradients(trainable.params, micro, (b) => batchLossSum(model, b, true), targets, accumulator);
      const gradNorm = clipGradNormInPlace(accumulator.grads, cfg.optim.grad_clip ?? Infinity);
      return {
        loss,
        gradNorm,
        tokens,
        apply: () => trainable.optimizer.step(accumulator.grads, lr),
        release: () => accumulator.reset(),
        metrics: { 'train/lr': lr, 'train/epoch': opts.epoch() },
      };
    },
    evaluate: () => {
      if (opts.evalBatches.length === 0) return null;
      const { loss } = evaluateLoss(model, opts.evalBatches);
      return { 'eval/loss': loss, 'eval/perplexity': Math.exp(loss) };
    },
    stopEarly: (ev) => {
      const es = updateEarlyStopping(early.state, ev['eval/loss']!, { patience: cfg.sft.early_stopping_patience, minDelta: cfg.sft.early_stopping_min_delta });
      early.state = es.state;
      return es.stop ? `eval loss did not improve for ${es.state.bad} evaluations (best ${es.state.best})` : null;
    },
  };
}

/** The config keys the fine-tuning loop reads besides {@link FineTuneSettings}. */
export interface FineTuneRunSettings extends FineTuneSettings, LoopCadenceSettings {
  train: { batch_size: number; seed: number | null; epochs: number | null; steps: number; max_nonfinite: number; eval_every: number };
  engine: { seed: number };
  checkpoint: { every_steps: number; keep_last: number | null };
}

/**
 * Fine-tune on `rows` training rows through the harness loop: train.epochs (or train.steps) of
 * steps; a resumed run's weights, AdamW moments, RNG, data cursor and early-stopping state restored;
 * checkpoints of all of them on the loop's cadence.
 */
export async function fineTune(opts: {
  label: string;
  run: StageRun;
  model: LlamaModel;
  trainable: Trainable;
  cfg: FineTuneRunSettings;
  rng: Rng;
  rows: number;
  /** The collated micro-batch of these training rows. */
  batchOf: (indices: number[]) => TokenBatch;
  evalBatches: readonly TokenBatch[];
  progress: boolean;
  onStep?: LoopSpec['onStep'];
  log: (m: string) => void;
}): Promise<LoopResult> {
  const { label, run, cfg, trainable, rng, log } = opts;
  const cursorOpts = { size: opts.rows, batchSize: cfg.train.batch_size, seed: cfg.train.seed ?? cfg.engine.seed };
  const microPerEpoch = new DataCursor(cursorOpts).batchesPerEpoch;
  const totalSteps = stepsOfRun(cfg.train, microPerEpoch, cfg.optim.grad_accum);
  const early = { state: { best: null, bad: 0 } as EarlyStoppingState };
  const restored = resumeStage(run, { weights: trainable.weights, optimizer: trainable.optimizer, rng }, { label, log });
  if (restored) early.state = (restored.trainerState['early_stopping'] as EarlyStoppingState | undefined) ?? early.state;
  const cursor = new DataCursor({ ...cursorOpts, ...(restored ? { state: restored.dataCursor as CursorState } : {}) });
  const epoch = (): number => cursor.state.epoch + cursor.state.index / cursor.size;

  return trainLoop({
    label,
    run,
    startStep: restored?.step ?? 0,
    totalSteps,
    ...loopCadence(cfg),
    ...fineTuneLoopParts({
      model: opts.model,
      trainable,
      cfg,
      totalSteps,
      nextBatch: () => opts.batchOf(cursor.next().indices),
      epoch,
      evalBatches: opts.evalBatches,
      early,
    }),
    checkpoint: (at) =>
      saveStageCheckpoint(run.dir, {
        weights: trainable.weights,
        optimizer: trainable.optimizer,
        step: at,
        epoch: epoch(),
        maxSteps: totalSteps,
        rng,
        dataCursor: cursor.state,
        extra: { early_stopping: early.state },
        keepLast: cfg.checkpoint.keep_last,
      }),
    progress: opts.progress ? { keys: { loss: 'train/loss', lr: 'train/lr', eval_loss: 'eval/loss' } } : null,
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
    log,
  });
}

/** Inside final/: the model an adapter was trained on, when model.adapter was merged into model.path. */
export const ADAPTER_BASE_DIR = 'base';

/**
 * The final folder: the PEFT adapter (+ tokenizer files, + `base/` with `writeBase`, + `merged/` with
 * `saveMerged`), or the whole HF model under full fine-tuning. Merging folds the adapters in: call it last.
 */
export function writeFineTuned(
  model: LlamaModel,
  dir: string,
  opts: {
    lora: boolean;
    saveMerged: boolean;
    modelDir: string;
    tokenizerDir: string;
    /** The base the adapter records (default modelDir). */
    adapterBase?: string;
    /**
     * Write the model the adapter was trained on (model.path with model.adapter merged in) as
     * base/: recorded as the adapter's base, PEFT-style loading reproduces the policy.
     */
    writeBase?: boolean;
  },
): void {
  if (!opts.lora) {
    saveHfModel(model, dir);
    copyTokenizerFiles(opts.tokenizerDir, dir);
    return;
  }
  saveAdapter(model, dir, { baseModelNameOrPath: opts.adapterBase ?? opts.modelDir });
  copyTokenizerFiles(opts.tokenizerDir, dir);
  if (opts.writeBase) {
    withAdaptersDisabled(model, () => saveHfModel(model, join(dir, ADAPTER_BASE_DIR)));
    copyTokenizerFiles(opts.tokenizerDir, join(dir, ADAPTER_BASE_DIR));
  }
  if (opts.saveMerged) {
    mergeLora(model);
    saveHfModel(model, join(dir, 'merged'));
    copyTokenizerFiles(opts.tokenizerDir, join(dir, 'merged'));
  }
}
