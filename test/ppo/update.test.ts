/**
 * Gradient accumulation in the PPO update: a minibatch of miniBatchSize × gradAccum sequences taken
 * one micro-batch at a time is the same optimizer step as the whole minibatch at once, because every
 * mean is a token mean over the minibatch (each micro-batch divides by the minibatch's token count).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { trainableVariables } from '../../src/lora/inject.js';
import { gae, whitenAdvantages } from '../../src/ppo/advantages.js';
import { shapeRewards } from '../../src/ppo/rewards.js';
import { rollout } from '../../src/ppo/rollout.js';
import { ppoUpdate, type UpdateOptions } from '../../src/ppo/update.js';
import { AdamW } from '../../src/training/adamw.js';
import { NonFiniteGuard } from '../../src/training/nan-guard.js';
import { sampling, tinyModels, tinyPrompts } from './fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const common: Omit<UpdateOptions, 'miniBatchSize' | 'gradAccum'> = {
  ppoEpochs: 2, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0.1, entropyCoef: 0.01,
  temperature: 1, lr: 2e-2, targetKl: null, ratioThreshold: null, maxGradNorm: 1,
};

/** One rollout (same for every call: same seeds), then ppoUpdate on fresh identical models. */
function updateWith(o: Pick<UpdateOptions, 'miniBatchSize' | 'gradAccum'>) {
  const m = tinyModels();
  try {
    const ro = rollout(m, tinyPrompts(8, 31), sampling, new Rng(4));
    const { rewards } = shapeRewards({ scores: ro.scores, logprobs: ro.logprobs, refLogprobs: ro.refLogprobs, mask: ro.responseMask, klCoef: 0.1, estimator: 'k1' });
    const { advantages, returns } = gae(rewards, ro.values, ro.responseMask, 1, 0.95);
    const batch = { ...ro, advantages: whitenAdvantages(advantages, ro.responseMask), returns };
    const lengths = ro.responseMask.map((r) => r.reduce((s, x) => s + x, 0));
    const params = new Map<string, tf.Variable>();
    for (const [k, v] of trainableVariables(m.policy)) params.set(`policy.${k}`, v);
    for (const [k, v] of m.critic.trainableVariables()) params.set(`critic.${k}`, v);
    const optimizer = new AdamW(params, { weightDecay: 0.01 });
    const tensorsBefore = tf.memory().numTensors;
    const stats = ppoUpdate({ policy: m.policy, critic: m.critic, optimizer, params }, batch, { ...common, ...o }, new Rng(9), new NonFiniteGuard(3));
    const leaked = tf.memory().numTensors - tensorsBefore;
    optimizer.dispose();
    const weights = new Map([...params].map(([k, v]) => [k, Array.from(v.dataSync())]));
    return { stats, weights, lengths, leaked };
  } finally {
    m.dispose();
  }
}

const maxDiff = (a: Map<string, number[]>, b: Map<string, number[]>): number => {
  let d = 0;
  for (const [k, v] of a) v.forEach((x, i) => { d = Math.max(d, Math.abs(x - b.get(k)![i]!)); });
  return d;
};

describe('ppoUpdate with gradient accumulation', () => {
  test('gradAccum 2 × miniBatchSize 2 = miniBatchSize 4: same steps, statistics and weights within 1e-6', () => {
    const whole = updateWith({ miniBatchSize: 4, gradAccum: 1 });
    const accumulated = updateWith({ miniBatchSize: 2, gradAccum: 2 });
    const perMicro = updateWith({ miniBatchSize: 2, gradAccum: 1 });
    // responses of different lengths: a mean of per-micro-batch means would weight tokens unevenly
    expect(new Set(whole.lengths).size).toBeGreaterThan(1);
    expect(whole.leaked).toBe(0);
    expect(accumulated.leaked).toBe(0);

    // 8 sequences, 2 epochs: 2 optimizer steps per epoch either way
    expect(whole.stats.minibatches).toHaveLength(4);
    expect(accumulated.stats.minibatches).toHaveLength(4);
    whole.stats.minibatches.forEach((w, i) => {
      const a = accumulated.stats.minibatches[i]!;
      for (const key of ['policyLoss', 'valueLoss', 'policyClipfrac', 'valueClipfrac', 'approxKl', 'ratioMean', 'maxAbsLogRatio', 'entropy', 'gradNorm'] as const) {
        expect(Math.abs(a[key] - w[key])).toBeLessThan(1e-6);
      }
      expect(a.applied).toBe(true);
    });
    // the policy moved (the later minibatches see ratios ≠ 1) and both runs moved it the same way
    expect(whole.stats.minibatches[3]!.maxAbsLogRatio).toBeGreaterThan(1e-3);
    expect(maxDiff(accumulated.weights, whole.weights)).toBeLessThan(1e-6);
    // control: one optimizer step per micro-batch (what ignoring grad_accum does) ends elsewhere
    expect(perMicro.stats.minibatches).toHaveLength(8);
    expect(maxDiff(perMicro.weights, whole.weights)).toBeGreaterThan(1e-3);
  });
});
