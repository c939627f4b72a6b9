import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { AdamW } from '../../src/training/adamw.js';
import { accumulateGradients, GradientAccumulator, microBatchGrads } from '../../src/training/accumulation.js';
import { clipGradNormInPlace } from '../../src/training/clip.js';
import { countTargets, maskedCrossEntropySum } from '../../src/training/loss.js';
import { injectLora, trainableVariables } from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama } from '../../src/model/llama.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const V = 7, H = 4, T = 5, B = 8;

/** A two-matrix stand-in LM: logits = embed[ids] · Wᵀ. */
function makeModel(seed: number): Map<string, tf.Variable> {
  const rng = new Rng(seed);
  return new Map([
    ['embed', tf.variable(tf.tensor2d(rng.fillNormal(new Float32Array(V * H), 0.5), [V, H]))],
    ['head', tf.variable(tf.tensor2d(rng.fillNormal(new Float32Array(V * H), 0.5), [V, H]))],
  ]);
}

function lossSum(params: Map<string, tf.Variable>, ids: number[][], labels: number[][]): tf.Scalar {
  return tf.tidy(() => {
    const x = tf.gather(params.get('embed')!, tf.tensor2d(ids, undefined, 'int32')); // [b, T, H]
    const logits = tf.reshape(tf.matMul(tf.reshape(x, [-1, H]), params.get('head')!, false, true), [ids.length, T, V]);
    const labelsT = tf.tensor2d(labels, undefined, 'int32');
    return maskedCrossEntropySum(logits, labelsT).sum;
  });
}

// Uneven target counts per row (between 1 and 5 scored tokens).
const rng = new Rng(7);
const ids = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
const labels = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (t < 1 + (b * 3) % T ? rng.int(V) : -100)));

describe('gradient accumulation', () => {
  test('batch 2 × 4 accumulation steps equals batch 8 in loss and updated weights', () => {
    const total = countTargets(labels);
    const big = makeModel(1);
    const bigOpt = new AdamW(big, { weightDecay: 0.1 });
    const small = makeModel(1);
    const smallOpt = new AdamW(small, { weightDecay: 0.1 });
    const acc = new GradientAccumulator();
    const before = tf.memory().numTensors;

    for (let step = 0; step < 2; step++) {
      const full = microBatchGrads(big, () => lossSum(big, ids, labels), total);
      const fullNorm = clipGradNormInPlace(full.grads, 0.5);
      bigOpt.step(full.grads, 0.05);
      full.grads.forEach((g) => g.dispose());

      const micro = [0, 2, 4, 6].map((i) => ({ ids: ids.slice(i, i + 2), labels: labels.slice(i, i + 2) }));
      const { loss } = accumulateGradients(small, micro, (mb) => lossSum(small, mb.ids, mb.labels), total, acc);
      expect(acc.microSteps).toBe(4);
      const accNorm = clipGradNormInPlace(acc.grads, 0.5);
      smallOpt.step(acc.grads, 0.05);
      acc.reset();

      expect(Math.abs(loss - full.loss)).toBeLessThan(1e-6);
      expect(Math.abs(accNorm - fullNorm)).toBeLessThan(1e-6);
      for (const name of big.keys()) {
        const a = big.get(name)!.dataSync(), b = small.get(name)!.dataSync();
        let maxDiff = 0;
        for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
        expect(maxDiff).toBeLessThan(1e-6);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('averaging micro-batch means instead would differ (uneven token counts)', () => {
    const model = makeModel(1);
    const total = countTargets(labels);
    const full = tf.tidy(() => tf.div(lossSum(model, ids, labels), total).dataSync()[0]!);
    let meanOfMeans = 0;
    for (const i of [0, 2, 4, 6]) {
      const l = labels.slice(i, i + 2);
      meanOfMeans += tf.tidy(() => tf.div(lossSum(model, ids.slice(i, i + 2), l), countTargets(l)).dataSync()[0]!) / 4;
    }
    expect(Math.abs(meanOfMeans - full)).toBeGreaterThan(1e-3);
  });

  test('LoRA on a Llama model: 2 × 4 accumulation equals batch 8 after one AdamW step', () => {
    const config = llamaConfig({ vocab_size: V, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2 });
    const total = countTargets(labels);
    const run = (microBatch: number) => {
      const model = initLlama(config, new Rng(1));
      injectLora(model, { targetModules: 'all-linear', r: 2, alpha: 4, rng: new Rng(2) });
      const vars = trainableVariables(model);
      const opt = new AdamW(vars);
      const micro = Array.from({ length: B / microBatch }, (_, i) => ({ ids: ids.slice(i * microBatch, (i + 1) * microBatch), labels: labels.slice(i * microBatch, (i + 1) * microBatch) }));
      const lossOf = (mb: { ids: number[][]; labels: number[][] }) => tf.tidy(() => {
        const { logits } = model.forward({ inputIds: tf.tensor2d(mb.ids, undefined, 'int32'), training: true });
        return maskedCrossEntropySum(logits, tf.tensor2d(mb.labels, undefined, 'int32')).sum;
      });
      const { loss, accumulator } = accumulateGradients(vars, micro, lossOf, total);
      // Adam's first step is nearly sign(g); compare the gradients themselves too.
      const grads = new Map([...accumulator.grads].map(([k, g]) => [k, g.dataSync().slice()]));
      opt.step(accumulator.grads, 0.01);
      accumulator.reset();
      const weights = new Map([...vars].map(([k, v]) => [k, v.dataSync().slice()]));
      opt.dispose();
      model.dispose();
      return { loss, weights, grads };
    };
    const big = run(8), small = run(2);
    expect(Math.abs(big.loss - small.loss)).toBeLessThan(1e-6);
    expect(big.grads.size).toBe(7 * 2); // B of every adapter; A too (zero grad at B = 0 is still a grad)
    for (const [k, g] of big.grads) {
      const other = small.grads.get(k)!;
      let maxDiff = 0, maxAbs = 0;
      for (let i = 0; i < g.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(g[i]! - other[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(g[i]!));
      }
      expect(maxDiff).toBeLessThanOrEqual(1e-6 * Math.max(1, maxAbs));
    }
    for (const [k, w] of big.weights) {
      const other = small.weights.get(k)!;
      let maxDiff = 0;
      for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(w[i]! - other[i]!));
      expect(maxDiff).toBeLessThan(1e-6);
    }
  });
});
