/**
 * Fine-tuning a causal LM on collated token batches, as SFT and rejection sampling both do it:
 * the trainable weights (LoRA adapters or every weight) with their checkpoint I/O and AdamW, the
 * harness loop's step / evaluate / early-stopping parts, and the final folder. A recipe brings its
 * data, its run folder and its checkpoint extras.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenBatch } from '../data/index.js';
import type { Rng } from '../engine/rng.js';
import { injectLora, mergeLora, saveAdapter, trainableVariables } from '../lora/index.js';
import { configToJson, saveHfModel, type LlamaModel } from '../model/index.js';
import { copyTokenizerFiles } from '../tokenizer/files.js';
import { accumulateGradients, GradientAccumulator } from './accumulation.js';
import { AdamW } from './adamw.js';
import { clipGradNormInPlace } from './clip.js';
import { updateEarlyStopping, type EarlyStoppingState } from './early-stopping.js';
import type { LoopSpec } from './loop.js';
import { adapterWeights, variableWeights, type WeightsIO } from './run.js';
import { learningRateAt, type ScheduleKind } from './schedule.js';
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

export interface Trainable {
  lora: boolean;
  params: Map<string, tf.Variable>;
  /** How the trainable weights go into a checkpoint: a PEFT adapter, or a loadable HF folder. */
  weights: WeightsIO;
  optimizer: AdamW;
}

/** LoRA adapters injected (or every weight trainable), the checkpoint I/O and AdamW over them. */
export function makeTrainable(model: LlamaModel, cfg: FineTuneSettings, rng: Rng, dirs: { modelDir: string; tokenizerDir: string }): Trainable {
  const lora = cfg.lora.enabled;
  if (lora) {
    withoutStrayTensors(() =>
      injectLora(model, {
        targetModules: cfg.lora.target_modules,
        r: cfg.lora.r,
        alpha: cfg.lora.alpha,
        dropout: cfg.lora.dropout,
        useRslora: cfg.lora.use_rslora,
        rng,
        dropoutRng: rng,
      }),
    );
  }
  const params = lora ? trainableVariables(model) : model.params;
  const weights = lora
    ? adapterWeights(model, { baseModelNameOrPath: dirs.modelDir })
    : variableWeights(model.params, {
        writeExtra: (dir) => {
          // A full checkpoint is a loadable HF folder.
          writeFileSync(join(dir, 'config.json'), JSON.stringify(configToJson(model.config), null, 2) + '\n');
          copyTokenizerFiles(dirs.tokenizerDir, dir);
        },
      });
  const o = cfg.optim;
  const optimizer = withoutStrayTensors(() => new AdamW(params, { beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weight_decay }));
  return { lora, params, weights, optimizer };
}

/**
 * The loop's step (next-token loss on `grad_accum` micro-batches from `nextBatch`, token-mean over
 * the whole step), held-out loss and early stopping on it. `early` is read and updated in place so
 * checkpoints carry it.
 */
export function fineTuneLoopParts(opts: {
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

/**
 * The final folder: the PEFT adapter (+ tokenizer files, + `merged/` with `sft.save_merged`), or the
 * whole HF model under full fine-tuning. Merging folds the adapters in: call it last.
 */
export function writeFineTuned(model: LlamaModel, dir: string, opts: { lora: boolean; saveMerged: boolean; modelDir: string; tokenizerDir: string }): void {
  if (!opts.lora) {
    saveHfModel(model, dir);
    copyTokenizerFiles(opts.tokenizerDir, dir);
    return;
  }
  saveAdapter(model, dir, { baseModelNameOrPath: opts.modelDir });
  copyTokenizerFiles(opts.tokenizerDir, dir);
  if (opts.saveMerged) {
    mergeLora(model);
    saveHfModel(model, join(dir, 'merged'));
    copyTokenizerFiles(opts.tokenizerDir, join(dir, 'merged'));
  }
}
