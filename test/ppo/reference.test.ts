/**
 * One PPO iteration against an independent numpy float64 reference (scripts/ppo_reference.py,
 * fixture test/fixtures/ppo_ref/): a tiny Llama policy with LoRA on q/v/o and a value head on its
 * hidden states, three prompt + response rows. Each piece gets the reference's inputs, so a
 * mismatch points at the piece: log-probs (π_old, π_ref), values, processed scores, KL-shaped
 * rewards, GAE and returns, whitened advantages, then — at other adapter weights, so ratios differ
 * from 1 and both branches of every clip are taken — the clipped policy and value losses, clipfracs,
 * approx-KL, entropy, the total loss's gradient for every adapter matrix and the value head.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { trainableVariables, withAdaptersDisabled } from '../../src/lora/inject.js';
import { loadAdapter, loadAdapterWeights } from '../../src/lora/peft-io.js';
import { ScalarHead } from '../../src/model/heads.js';
import { loadHfModel } from '../../src/model/io/hf.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { newVariable } from '../../src/model/variables.js';
import { packagePath } from '../../src/paths.js';
import { applyMask, gae, whitenAdvantages, type Rows } from '../../src/ppo/advantages.js';
import { processScores, shapeRewards } from '../../src/ppo/rewards.js';
import { policyHeadCritic, responseLogprobs, type Critic } from '../../src/ppo/rollout.js';
import { ppoUpdate } from '../../src/ppo/update.js';
import type { AdamW } from '../../src/training/adamw.js';
import { NonFiniteGuard } from '../../src/training/nan-guard.js';

const FIXTURE = packagePath('test', 'fixtures', 'ppo_ref');

interface Expected {
  prompt_len: number;
  input_ids: number[][];
  attention_mask: number[][];
  response_mask: Rows;
  has_eos: boolean[];
  raw_scores: number[];
  settings: {
    temperature: number; normalize: { mean: number; std: number }; clip: number; missing_eos_penalty: number; kl_coef: number;
    gamma: number; lambda: number; clip_range: number; clip_range_value: number; vf_coef: number; entropy_coef: number;
  };
  value_head: number[];
  logprobs: Rows; ref_logprobs: Rows; values: Rows; scores: number[]; kl: Rows; rewards: Rows;
  advantages: Rows; returns: Rows; whitened_advantages: Rows;
  update: Record<'policy_loss' | 'policy_clipfrac' | 'approx_kl' | 'ratio_mean' | 'value_loss' | 'value_clipfrac' | 'entropy' | 'max_abs_log_ratio' | 'loss', number>;
  grads: Record<string, number[][]>;
  grad_norm: number;
}
const E = JSON.parse(readFileSync(`${FIXTURE}/expected.json`, 'utf8')) as Expected;
const S = E.settings;
const P = E.prompt_len;

function expectRowsClose(actual: Rows, expected: Rows, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  actual.forEach((row, i) => row.forEach((x, t) => (worst = Math.max(worst, Math.abs(x - expected[i]![t]!)))));
  expect(worst).toBeLessThan(tol);
}

let policy: LlamaModel;
let critic: Critic;
let head: ScalarHead;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  policy = loadHfModel(FIXTURE);
  loadAdapter(policy, `${FIXTURE}/adapter0`); // θ0: the adapters the rollout samples with
  head = new ScalarHead(newVariable(Float32Array.from(E.value_head), [1, E.value_head.length]));
  critic = policyHeadCritic(policy, head);
});
afterAll(() => {
  policy.dispose();
  head.weight.dispose();
});

const batchTensors = () => ({
  ids: tf.tensor2d(E.input_ids, undefined, 'int32'),
  mask: tf.tensor2d(E.attention_mask, undefined, 'int32'),
});

describe('one PPO iteration equals the numpy float64 reference', () => {
  test('rollout: log π_old, log π_ref (adapters off) and V_old of every response token', () => {
    const { ids, mask } = batchTensors();
    const read = (t: tf.Tensor2D) => applyMask(t.arraySync(), E.response_mask);
    const lp = responseLogprobs(policy, ids, mask, P, S.temperature, false);
    const ref = withAdaptersDisabled(policy, () => responseLogprobs(policy, ids, mask, P, S.temperature, false));
    const values = critic.values(ids, mask, P, false);
    expectRowsClose(read(lp.logprobs), E.logprobs, 2e-5);
    expectRowsClose(read(ref.logprobs), E.ref_logprobs, 2e-5);
    expectRowsClose(read(values), E.values, 2e-5);
    tf.dispose([ids, mask, lp.logprobs, lp.entropy, ref.logprobs, ref.entropy, values]);
  });

  test('scores, KL-shaped rewards (k3), GAE, returns and whitened advantages', () => {
    const scores = processScores(E.raw_scores, E.has_eos, { normalize: S.normalize, clip: S.clip, missingEosPenalty: S.missing_eos_penalty });
    scores.forEach((s, i) => expect(s).toBeCloseTo(E.scores[i]!, 12));
    const shaped = shapeRewards({
      scores: E.scores, logprobs: E.logprobs, refLogprobs: E.ref_logprobs, mask: E.response_mask, klCoef: S.kl_coef, estimator: 'k3',
    });
    expectRowsClose(shaped.kl, E.kl, 1e-11);
    expectRowsClose(shaped.rewards, E.rewards, 1e-11);
    const { advantages, returns } = gae(E.rewards, E.values, E.response_mask, S.gamma, S.lambda);
    expectRowsClose(advantages, E.advantages, 1e-11);
    expectRowsClose(returns, E.returns, 1e-11);
    expectRowsClose(whitenAdvantages(E.advantages, E.response_mask), E.whitened_advantages, 1e-11);
  });

  test('at other adapters: clipped policy and value losses, clipfracs, approx-KL, entropy, and the gradient of every adapter matrix', () => {
    const adapter1 = `${FIXTURE}/adapter1.safetensors`;
    loadAdapterWeights(policy, readSafetensors(adapter1).tensors, adapter1); // θ1, as after some updates
    const params = new Map<string, tf.Variable>();
    for (const [k, v] of trainableVariables(policy)) params.set(`policy.${k}`, v);
    params.set('critic.value_head.weight', head.weight);
    // The optimizer's step only records the gradients it is given (clipping is off).
    const grads = new Map<string, Float32Array>();
    const optimizer = { step: (g: Map<string, tf.Tensor>) => g.forEach((t, k) => grads.set(k, (t.dataSync() as Float32Array).slice())) } as unknown as AdamW;
    const before = tf.memory().numTensors;
    const stats = ppoUpdate(
      { policy, critic, optimizer, params },
      {
        promptLen: P, ids: E.input_ids, attentionMask: E.attention_mask, responseMask: E.response_mask,
        logprobs: E.logprobs, values: E.values, advantages: E.whitened_advantages, returns: E.returns,
      },
      {
        ppoEpochs: 1, miniBatchSize: E.input_ids.length, clipRange: S.clip_range, clipRangeValue: S.clip_range_value,
        vfCoef: S.vf_coef, entropyCoef: S.entropy_coef, temperature: S.temperature, lr: 0, targetKl: null, ratioThreshold: null, maxGradNorm: null,
      },
      new Rng(0),
      new NonFiniteGuard(3),
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(stats.minibatches).toHaveLength(1);
    const mb = stats.minibatches[0]!;
    const u = E.update;
    expect(mb.applied).toBe(true);
    expect(mb.policyLoss).toBeCloseTo(u.policy_loss, 5);
    expect(mb.valueLoss).toBeCloseTo(u.value_loss, 5);
    expect(mb.policyClipfrac).toBeCloseTo(u.policy_clipfrac, 6); // 5 of 9 tokens
    expect(mb.valueClipfrac).toBeCloseTo(u.value_clipfrac, 6); // 4 of 9 tokens
    expect(mb.approxKl).toBeCloseTo(u.approx_kl, 5);
    expect(mb.ratioMean).toBeCloseTo(u.ratio_mean, 5);
    expect(mb.maxAbsLogRatio).toBeCloseTo(u.max_abs_log_ratio, 5);
    expect(mb.entropy).toBeCloseTo(u.entropy, 5);
    expect(mb.gradNorm).toBeCloseTo(E.grad_norm, 4);

    const names = Object.keys(E.grads);
    expect([...grads.keys()].sort()).toEqual(names.map((n) => (n === 'value_head.weight' ? `critic.${n}` : `policy.${n}`)).sort());
    expect(names).toHaveLength(7); // lora_A and lora_B of q/v/o, and the value head
    for (const name of names) {
      const want = E.grads[name]!.flat();
      const got = grads.get(name === 'value_head.weight' ? `critic.${name}` : `policy.${name}`)!;
      let worst = 0;
      want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i]! - w))));
      expect({ name, worst: worst < 2e-6 }).toEqual({ name, worst: true }); // float32 vs float64: ~2e-7 seen
    }
  });
});
