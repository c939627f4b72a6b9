/**
 * ppo.critic: reward_model_lora — the critic is the reward model's own backbone with LoRA adapters
 * and a value head copied from its score head. The reward model's scores must stay exactly those of
 * the untouched reward model while the critic trains, and a resumed run must equal an uninterrupted one.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { trainableVariables } from '../../src/lora/inject.js';
import { readSafetensorsHeader } from '../../src/model/io/safetensors.js';
import { initLlama } from '../../src/model/llama.js';
import { answerAndScore } from '../../src/ppo/evaluate.js';
import { CRITIC_FILE, trainPpo, type PpoOptions } from '../../src/ppo/recipe.js';
import { rollout, sequenceScores } from '../../src/ppo/rollout.js';
import { openTracker, readMetricsJsonl } from '../../src/tracking/index.js';
import { EOS, PAD, ppoTestOptions, sampling, tinyConfig, tinyLoraCriticModels, tinyPrompts } from './fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ppo-lora-critic-'));
  dirs.push(d);
  return d;
};

const prompts = tinyPrompts(10, 21);
const evalPrompts = tinyPrompts(3, 22);

const options: PpoOptions = { ...ppoTestOptions, lr: { peak: 5e-2, schedule: 'constant', warmupSteps: 0 }, sampleEvery: 0 };

/** Fixed prompt + response rows, left-padded, to score before and after training. */
const FIXED_IDS = [[PAD, 4, 5, 6, 3, 7, EOS], [5, 3, 3, 6, 4, 4, 7]];
const FIXED_MASK = [[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]];

function scoresOf(model: Parameters<typeof sequenceScores>[0]): Float32Array {
  const ids = tf.tensor2d(FIXED_IDS, undefined, 'int32');
  const mask = tf.tensor2d(FIXED_MASK, undefined, 'int32');
  try {
    return sequenceScores(model, ids, mask);
  } finally {
    tf.dispose([ids, mask]);
  }
}

/** The score with the adapters ON and the original head: what a scorer that forgot to switch them off would read. */
function scoresWithAdaptersOn(model: Parameters<typeof sequenceScores>[0]): Float32Array {
  return tf.tidy(() => {
    const ids = tf.tensor2d(FIXED_IDS, undefined, 'int32');
    const mask = tf.tensor2d(FIXED_MASK, undefined, 'int32');
    return model.scoreHead!.scoreAtLastToken(model.hiddenStates({ inputIds: ids, attentionMask: mask }).hidden, mask);
  }).dataSync() as Float32Array;
}

const snapshot = (vars: Map<string, tf.Variable>): Map<string, Float32Array> =>
  new Map([...vars].map(([k, v]) => [k, (v.dataSync() as Float32Array).slice()]));

async function run(runDir: string, extra: Partial<PpoOptions> = {}, inspect?: (m: ReturnType<typeof tinyLoraCriticModels>) => void) {
  const m = tinyLoraCriticModels();
  const tracker = openTracker({ uri: null, runDir });
  const evaluate = () => {
    const a = answerAndScore(m.policy, m.rewardModel, evalPrompts, { maxNewTokens: 4, batchSize: 2, stopTokenIds: [EOS], padTokenId: PAD });
    return { 'eval/reward_mean': a.scores.reduce((s, x) => s + x, 0) / a.scores.length };
  };
  try {
    const before = tf.memory().numTensors;
    const result = await trainPpo(m, prompts, { ...options, ...extra }, { runDir, tracker, evaluate });
    const leaked = tf.memory().numTensors - before;
    inspect?.(m);
    return { ...result, leaked };
  } finally {
    m.dispose();
  }
}

const withoutTimestamps = (rows: Array<Record<string, number>>) => rows.map(({ timestamp: _t, ...rest }) => rest);

describe('ppo.critic: reward_model_lora', () => {
  test('the critic trains its adapters and value head on the reward model, and the rewards stay exactly the reward model\'s', async () => {
    // The same reward model, built from the same seed, never given adapters: the reference scores.
    const plain = initLlama(tinyConfig, new Rng(2), { lmHead: false, score: true });
    const reference = scoresOf(plain);
    plain.dispose();

    let before: Float32Array | null = null;
    let criticBefore: Map<string, Float32Array> | null = null;
    const m = tinyLoraCriticModels();
    try {
      before = scoresOf(m.rewardModel);
      expect(before).toEqual(reference);
      criticBefore = snapshot(m.critic.trainableVariables());
      // the value head starts as the score head; the critic's variables are the adapters + the head
      expect(criticBefore.get('value_head.weight')).toEqual(m.rewardModel.scoreHead!.weight.dataSync());
      expect([...criticBefore.keys()].sort()).toEqual([...trainableVariables(m.rewardModel).keys(), 'value_head.weight'].sort());
      const frozen = snapshot(m.rewardModel.params);
      const ro = rollout(m, tinyPrompts(4, 13), sampling, new Rng(8));
      expect(ro.scores).toHaveLength(4);

      // 3 PPO iterations at a large learning rate through the loop itself.
      const result = await trainPpo(m, prompts, { ...options, iterations: 3, evalEvery: 0 }, { runDir: tmp(), tracker: openTracker({ uri: null, runDir: tmp() }) });
      expect(result.iterations).toBe(3);

      const after = snapshot(m.critic.trainableVariables());
      expect(after.get('value_head.weight')).not.toEqual(criticBefore.get('value_head.weight'));
      const loraB = [...after.keys()].find((k) => k.endsWith('v_proj.lora_B.weight'))!;
      expect(after.get(loraB)!.some((x) => x !== 0)).toBe(true); // B starts at 0: the adapters moved
      // The reward model's own weights (score head included) are untouched ...
      for (const [k, v] of snapshot(m.rewardModel.params)) expect(v).toEqual(frozen.get(k));
      // ... so its scores (adapters off, original head) are bit for bit what they were,
      expect(scoresOf(m.rewardModel)).toEqual(before);
      // while the trained adapters do change what the same backbone computes when they are on.
      const on = scoresWithAdaptersOn(m.rewardModel);
      expect(Array.from(on).some((x, i) => Math.abs(x - before![i]!) > 1e-4)).toBe(true);
    } finally {
      m.dispose();
    }
  });

  test('stop after 2 of 4 iterations, resume: every logged metric and the critic\'s weights equal the uninterrupted run', async () => {
    let fullCritic: Map<string, Float32Array> | null = null;
    const full = tmp();
    const uninterrupted = await run(full, {}, (m) => { fullCritic = snapshot(m.critic.trainableVariables()); });
    expect(uninterrupted).toMatchObject({ iterations: 4, stopped: false, leaked: 0 });

    const split = tmp();
    const first = await run(split, { stopAfter: 2 });
    expect(first).toMatchObject({ iterations: 2, stopped: true });
    const ckpt = join(split, 'checkpoints', 'step_2');
    expect(existsSync(join(ckpt, CRITIC_FILE))).toBe(true);
    // The checkpoint holds the critic's adapters and value head (the reward model's weights are not trained, so not saved).
    const saved = [...readSafetensorsHeader(join(ckpt, CRITIC_FILE)).entries.map((e) => e.name)].sort();
    expect(saved).toContain('value_head.weight');
    expect(saved).toContain('model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(saved.every((k) => k === 'value_head.weight' || k.includes('.lora_'))).toBe(true);

    let resumedCritic: Map<string, Float32Array> | null = null;
    const second = await run(split, {}, (m) => { resumedCritic = snapshot(m.critic.trainableVariables()); });
    expect(second).toMatchObject({ iterations: 4, stopped: false, leaked: 0 });

    const a = withoutTimestamps(readMetricsJsonl(join(full, 'metrics.jsonl')));
    const b = withoutTimestamps(readMetricsJsonl(join(split, 'metrics.jsonl')));
    expect(a.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    expect(b).toEqual(a);
    expect(resumedCritic).toEqual(fullCritic);
    // the run did something: the value loss moved
    const iters = a.filter((r) => 'loss/value_avg' in r);
    expect(iters[3]!['loss/value_avg']).not.toBe(iters[0]!['loss/value_avg']);
  });
});
