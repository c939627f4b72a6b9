import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { initLlama } from '../../src/model/llama.js';
import { trainPpo, type PpoOptions } from '../../src/ppo/recipe.js';
import { epochOrder } from '../../src/ppo/prompts.js';
import { llama2Scorer } from '../../src/ppo/reward-set.js';
import { openTracker } from '../../src/tracking/index.js';
import { sampling, tinyConfig, tinyModels, tinyPrompts } from './fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

test('the PPO loop with two reward models: Llama 2 combined scores, per-model metrics, no leaked tensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ppo-set-'));
  const m = tinyModels();
  const safetyModel = initLlama(tinyConfig, new Rng(9), { lmHead: false, score: true });
  const prompts = tinyPrompts(8, 4);
  const isSafety = prompts.map((_, i) => i % 2 === 0);
  const options: PpoOptions = {
    iterations: 2, rolloutBatchSize: 4, sampling,
    update: { ppoEpochs: 1, miniBatchSize: 2, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0.1, entropyCoef: 0, temperature: 1, targetKl: null, ratioThreshold: 10, maxGradNorm: 1 },
    lr: { peak: 1e-3, schedule: 'constant', warmupSteps: 0 },
    adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 },
    gamma: 1, lambda: 0.95,
    rewards: { normalize: null, clip: null, missingEosPenalty: 0.5, estimator: 'k1', whiten: false },
    scoreRollout: llama2Scorer({ safetyModel, isSafety, helpfulStats: null, safetyStats: null, threshold: 0.15, clip: null, missingEosPenalty: 0.5 }),
    kl: { kind: 'fixed', value: 0.05 },
    seed: 1, dataSeed: 2, checkpointEvery: 0, keepLast: 1, resume: 'never', sampleEvery: 0, sampleCount: 1, evalEvery: 0, maxNonFinite: 3,
  };
  try {
    const before = tf.memory().numTensors;
    const result = await trainPpo(m, prompts, options, { runDir: dir, tracker: openTracker({ uri: null, runDir: dir }) });
    expect(tf.memory().numTensors - before).toBe(0);
    // the flags follow the prompts each rollout drew (epoch 0's permutation, 4 at a time)
    const order = epochOrder(8, 2, 0);
    result.history.forEach((h, it) => {
      const share = order.slice(4 * it, 4 * it + 4).filter((i) => isSafety[i]).length / 4;
      // whitened over the batch (mean 0), then 0.5 off every response without EOS
      expect(h['objective/scores']).toBeCloseTo(-0.5 * (1 - h['response/eos_rate']!), 6);
      expect(h['objective/safety_prompts']).toBe(share);
      expect(h['objective/combined_from_safety']).toBeGreaterThanOrEqual(share);
      expect(Number.isFinite(h['objective/scores_helpfulness'])).toBe(true);
      expect(Number.isFinite(h['objective/scores_safety'])).toBe(true);
      expect(h['objective/scores_combined_sigmoid']).toBeGreaterThan(0);
    });
  } finally {
    safetyModel.dispose();
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
