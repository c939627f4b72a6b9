import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { trainableVariables } from '../../src/lora/inject.js';
import { initLlama } from '../../src/model/llama.js';
import { gae, whitenAdvantages } from '../../src/ppo/advantages.js';
import { shapeRewards } from '../../src/ppo/rewards.js';
import { responseLogprobs, rollout } from '../../src/ppo/rollout.js';
import { ppoUpdate } from '../../src/ppo/update.js';
import { AdamW } from '../../src/training/adamw.js';
import { NonFiniteGuard } from '../../src/training/nan-guard.js';
import { sampling, tinyConfig, tinyModels, tinyPrompts, type TinySetup } from './fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

let m: TinySetup;
beforeEach(() => { m = tinyModels(); });
afterEach(() => m.dispose());

const snapshot = (vars: Map<string, tf.Variable>): Map<string, Float32Array> =>
  new Map([...vars].map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]));

function trainBatch(ro: ReturnType<typeof rollout>) {
  const { rewards } = shapeRewards({ scores: ro.scores, logprobs: ro.logprobs, refLogprobs: ro.refLogprobs, mask: ro.responseMask, klCoef: 0.1, estimator: 'k1' });
  const { advantages, returns } = gae(rewards, ro.values, ro.responseMask, 1, 0.95);
  return { ...ro, advantages: whitenAdvantages(advantages, ro.responseMask), returns };
}

describe('rollout', () => {
  test('old log-probs equal the sampler\'s and the training forward\'s within 1e-5; ref = base model', () => {
    const ro = rollout(m, tinyPrompts(6, 11), sampling, new Rng(5));
    const n = ro.responseMask[0]!.length;
    expect(ro.ids[0]!.length).toBe(ro.promptLen + n);
    const lengths = ro.responseMask.map((r) => r.reduce((s, x) => s + x, 0));
    expect(new Set(lengths).size).toBeGreaterThan(1); // some responses stop early (EOS), some run out

    // The KV-cached sampler vs the full training forward (left padding, position ids, temperature).
    let maxDiff = 0;
    ro.samplerLogprobs.forEach((row, i) => row.forEach((lp, t) => {
      if (ro.responseMask[i]![t]) maxDiff = Math.max(maxDiff, Math.abs(lp - ro.logprobs[i]![t]!));
    }));
    expect(maxDiff).toBeLessThan(1e-5);

    // The training forward (training = true) on a minibatch of rows recomputes them.
    const rows = [4, 1];
    const recomputed = tf.tidy(() => {
      const { logprobs } = responseLogprobs(
        m.policy, tf.tensor2d(rows.map((r) => ro.ids[r]!), undefined, 'int32'),
        tf.tensor2d(rows.map((r) => ro.attentionMask[r]!), undefined, 'int32'), ro.promptLen, 1, true);
      return logprobs.arraySync();
    });
    rows.forEach((r, k) => ro.responseMask[r]!.forEach((mk, t) => {
      if (mk) expect(Math.abs(recomputed[k]![t]! - ro.logprobs[r]![t]!)).toBeLessThan(1e-5);
    }));

    // The reference (adapters off) is the bare backbone; the policy differs from it.
    const base = initLlama(tinyConfig, new Rng(1));
    const baseLp = tf.tidy(() => responseLogprobs(base, tf.tensor2d(ro.ids, undefined, 'int32'),
      tf.tensor2d(ro.attentionMask, undefined, 'int32'), ro.promptLen, 1, false).logprobs.arraySync());
    base.dispose();
    let refDiff = 0;
    let policyVsRef = 0;
    ro.refLogprobs.forEach((row, i) => row.forEach((lp, t) => {
      if (!ro.responseMask[i]![t]) return expect(lp).toBe(0);
      refDiff = Math.max(refDiff, Math.abs(lp - baseLp[i]![t]!));
      policyVsRef = Math.max(policyVsRef, Math.abs(lp - ro.logprobs[i]![t]!));
    }));
    expect(refDiff).toBeLessThan(1e-6);
    expect(policyVsRef).toBeGreaterThan(1e-3);
    expect(ro.scores).toHaveLength(6);
  });

  test('with learning rate 0 a PPO step leaves every weight unchanged and every ratio is exactly 1', () => {
    const ro = rollout(m, tinyPrompts(8, 12), sampling, new Rng(6));
    const batch = trainBatch(ro);
    const params = new Map<string, tf.Variable>();
    for (const [k, v] of trainableVariables(m.policy)) params.set(`policy.${k}`, v);
    for (const [k, v] of m.critic.trainableVariables()) params.set(`critic.${k}`, v);
    const optimizer = new AdamW(params, { weightDecay: 0.1 });
    const before = snapshot(params);
    const tensorsBefore = tf.memory().numTensors;

    const stats = ppoUpdate({ policy: m.policy, critic: m.critic, optimizer, params }, batch, {
      ppoEpochs: 2, miniBatchSize: 4, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0.1, entropyCoef: 0.01,
      temperature: 1, lr: 0, targetKl: null, ratioThreshold: 10, maxGradNorm: 1,
    }, new Rng(7), new NonFiniteGuard(3));

    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(stats.minibatches).toHaveLength(4);
    for (const mb of stats.minibatches) {
      expect(mb.applied).toBe(true);
      expect(mb.maxAbsLogRatio).toBe(0);
      expect(mb.ratioMean).toBe(1);
      expect(mb.approxKl).toBe(0);
      expect(mb.policyClipfrac).toBe(0);
      expect(mb.valueClipfrac).toBe(0);
      expect(mb.gradNorm).toBeGreaterThan(0); // there was something to learn
    }
    const after = snapshot(params);
    for (const [k, v] of before) expect(after.get(k)).toEqual(v);
    optimizer.dispose();
  });

  test('a PPO step with lr > 0 moves the adapters and the critic, never the reference', () => {
    const ro = rollout(m, tinyPrompts(8, 13), sampling, new Rng(8));
    const batch = trainBatch(ro);
    const params = new Map<string, tf.Variable>();
    for (const [k, v] of trainableVariables(m.policy)) params.set(`policy.${k}`, v);
    for (const [k, v] of m.critic.trainableVariables()) params.set(`critic.${k}`, v);
    const frozen = snapshot(new Map([...m.policy.params].filter(([k]) => k.includes('q_proj'))));
    const optimizer = new AdamW(params, { weightDecay: 0 });
    const before = snapshot(params);
    const stats = ppoUpdate({ policy: m.policy, critic: m.critic, optimizer, params }, batch, {
      ppoEpochs: 2, miniBatchSize: 4, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0.1, entropyCoef: 0,
      temperature: 1, lr: 1e-2, targetKl: null, ratioThreshold: null, maxGradNorm: 1,
    }, new Rng(9), new NonFiniteGuard(3));
    // The first minibatch sees the rollout policy itself; later ones a moved policy.
    expect(stats.minibatches[0]!.maxAbsLogRatio).toBe(0);
    expect(stats.minibatches[3]!.maxAbsLogRatio).toBeGreaterThan(0);
    const after = snapshot(params);
    expect(after.get('policy.model.layers.0.self_attn.q_proj.lora_A.weight')).not.toEqual(before.get('policy.model.layers.0.self_attn.q_proj.lora_A.weight'));
    expect(after.get('critic.score.weight')).not.toEqual(before.get('critic.score.weight'));
    for (const [k, v] of snapshot(new Map([...m.policy.params].filter(([k]) => k.includes('q_proj'))))) expect(v).toEqual(frozen.get(k));
    optimizer.dispose();
  });

  test('target_kl stops the update at the first minibatch over it; ratio_threshold skips without applying', () => {
    const ro = rollout(m, tinyPrompts(8, 14), sampling, new Rng(10));
    const batch = trainBatch(ro);
    const params = new Map<string, tf.Variable>();
    for (const [k, v] of trainableVariables(m.policy)) params.set(`policy.${k}`, v);
    const optimizer = new AdamW(params, { weightDecay: 0 });
    const common = { ppoEpochs: 4, miniBatchSize: 2, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0, entropyCoef: 0, temperature: 1, maxGradNorm: null };
    const early = ppoUpdate({ policy: m.policy, critic: m.critic, optimizer, params }, batch,
      { ...common, lr: 0.05, targetKl: 1e-9, ratioThreshold: null }, new Rng(1), new NonFiniteGuard(3));
    expect(early.earlyStopped).toBe(true);
    const last = early.minibatches[early.minibatches.length - 1]!;
    expect(last.approxKl).toBeGreaterThan(1e-9);
    expect(last.applied).toBe(false);
    expect(early.minibatches.length).toBeLessThan(16);
    // Now every minibatch's mean ratio (≥ 1 − small) exceeds a threshold just above 0: nothing is applied.
    const before = snapshot(params);
    const skipped = ppoUpdate({ policy: m.policy, critic: m.critic, optimizer, params }, batch,
      { ...common, lr: 0.05, targetKl: null, ratioThreshold: 1e-6 }, new Rng(1), new NonFiniteGuard(3));
    expect(skipped.skippedRatio).toBe(16);
    expect(snapshot(params)).toEqual(before);
    optimizer.dispose();
  });
});

describe('rollout scoring for a reward model that reads at its last token', () => {
  test('the template suffix is scored after each finished response; unfinished ones score as before', () => {
    const plain = rollout(m, tinyPrompts(6, 11), sampling, new Rng(5));
    const suffixed = rollout({ ...m, rewardSuffix: [4] }, tinyPrompts(6, 11), sampling, new Rng(5));
    expect(suffixed.ids).toEqual(plain.ids); // same samples: the suffix only changes what the reward model reads
    expect(plain.hasEos.some((x) => x) && plain.hasEos.some((x) => !x)).toBe(true);
    plain.scores.forEach((s, i) => {
      if (plain.hasEos[i]) expect(Math.abs(suffixed.scores[i]! - s)).toBeGreaterThan(1e-6);
      else expect(Math.abs(suffixed.scores[i]! - s)).toBeLessThan(1e-5);
    });
  });
});
