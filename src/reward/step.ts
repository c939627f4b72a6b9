/**
 * One reward-model optimizer step: `grad_accum` micro-batches of pairs, chosen and rejected side by
 * side, Bradley–Terry loss (Llama 2 margins, optional centering); the step's mean loss is
 * Σ over micro-batches of (their loss sum) / (pairs in the whole step), so accumulation is exact.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { injectLora, trainableVariables } from '../lora/index.js';
import { adapterWeights, runDiskBytes, variableWeights, type WeightsIO } from '../training/run.js';
import type { RewardConfig } from './config.js';
import type { LlamaModel } from '../model/index.js';
import { clipGradNormInPlace, disposeGrads, globalNorm, microBatchGrads, type GradientAccumulator } from '../training/index.js';
import type { AdamW } from '../training/adamw.js';
import type { UpdateStep } from '../training/loop.js';
import { bradleyTerryLossSum, pairStats } from './loss.js';
import { pairRewards } from './model.js';
import { disposePairBatch, pairBatch, type TokenizedPair } from './pairs.js';

export function rewardStep(a: {
  model: LlamaModel;
  trainable: Map<string, tf.Variable>;
  optimizer: AdamW;
  accumulator: GradientAccumulator;
  microBatches: TokenizedPair[][];
  padId: number;
  centerCoefficient: number;
  gradClip: number | null;
  lr: number;
}): UpdateStep {
  const pairCount = a.microBatches.reduce((n, mb) => n + mb.length, 0);
  let loss = 0;
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (const mb of a.microBatches) {
    const batch = pairBatch(mb, { padId: a.padId, side: 'right', padToMultipleOf: 8 });
    const part = microBatchGrads(
      a.trainable,
      () => {
        const r = pairRewards(a.model, batch, { training: true }); // [B] each
        chosen.push(...r.chosen.dataSync());
        rejected.push(...r.rejected.dataSync());
        return bradleyTerryLossSum(r.chosen, r.rejected, batch.margins, a.centerCoefficient);
      },
      pairCount,
    );
    a.accumulator.add(part.grads);
    disposeGrads(part.grads);
    disposePairBatch(batch);
    loss += part.loss;
  }
  const gradNorm = a.gradClip !== null ? clipGradNormInPlace(a.accumulator.grads, a.gradClip) : globalNorm(a.accumulator.grads.values());
  const s = pairStats(chosen, rejected);
  return {
    loss,
    gradNorm,
    apply: () => a.optimizer.step(a.accumulator.grads, a.lr),
    release: () => a.accumulator.reset(),
    metrics: { 'train/accuracy': s.accuracy, 'train/margin': s.margin, 'train/rewards/chosen': s.chosenMean, 'train/rewards/rejected': s.rejectedMean, 'train/lr': a.lr },
  };
}

/** LoRA adapters with the score head in modules_to_save (PEFT's layout), or every trainable weight; and how they go into a checkpoint. */
export function rewardTrainable(model: LlamaModel, cfg: Pick<RewardConfig, 'lora' | 'model'>, rng: Rng): { trainable: Map<string, tf.Variable>; weights: WeightsIO } {
  if (!cfg.lora.enabled) {
    const trainable = new Map([...model.params].filter(([, v]) => v.trainable));
    return { trainable, weights: variableWeights(trainable) };
  }
  injectLora(model, {
    targetModules: cfg.lora.target_modules, r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout,
    modulesToSave: ['score'], rng: rng.fork(), dropoutRng: rng,
  });
  return { trainable: trainableVariables(model), weights: adapterWeights(model, { baseModelNameOrPath: cfg.model.path }) };
}

/** Disk for the run: checkpoints of the trainable weights, and the merged reward model. */
export function estimateOutputBytes(model: LlamaModel, trainable: Map<string, tf.Variable>, keepLast: number | null): number {
  const trainableSize = [...trainable.values()].reduce((n, v) => n + v.size, 0);
  return runDiskBytes({ trainable: trainableSize, savedWeights: model.numParameters(), keepLast });
}
