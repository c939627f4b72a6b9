import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { answerAndScore } from '../../src/ppo/evaluate.js';
import { trainPpo, type PpoOptions } from '../../src/ppo/recipe.js';
import { openTracker, readMetricsJsonl } from '../../src/tracking/index.js';
import { EOS, PAD, sampling, tinyModels, tinyPrompts } from './fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ppo-'));
  dirs.push(d);
  return d;
};

const prompts = tinyPrompts(10, 21);
const evalPrompts = tinyPrompts(3, 22);

const options: PpoOptions = {
  iterations: 4,
  rolloutBatchSize: 4,
  sampling,
  update: {
    ppoEpochs: 2, miniBatchSize: 2, clipRange: 0.2, clipRangeValue: 0.2, vfCoef: 0.1, entropyCoef: 0.01,
    temperature: 1, targetKl: null, ratioThreshold: 10, maxGradNorm: 1,
  },
  lr: { peak: 5e-3, schedule: 'cosine', warmupSteps: 1 },
  adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 },
  gamma: 1,
  lambda: 0.95,
  rewards: { normalize: { mean: 0.1, std: 2 }, clip: 5, missingEosPenalty: 0.5, estimator: 'k3', whiten: false },
  // a small target and horizon so β visibly moves every iteration
  kl: { kind: 'adaptive', value: 0.1, target: 0.01, horizon: 40 },
  seed: 5,
  dataSeed: 6,
  checkpointEvery: 0,
  keepLast: 2,
  resume: 'auto',
  sampleEvery: 2,
  sampleCount: 2,
  evalEvery: 2,
  maxNonFinite: 3,
};

/** One run in `runDir` on freshly built (identical) models. */
async function run(runDir: string, extra: Partial<PpoOptions> = {}) {
  const m = tinyModels();
  const tracker = openTracker({ uri: null, runDir });
  const evaluate = () => {
    const a = answerAndScore(m.policy, m.rewardModel, evalPrompts, { maxNewTokens: 4, batchSize: 2, stopTokenIds: [EOS], padTokenId: PAD });
    return { 'eval/reward_mean': a.scores.reduce((s, x) => s + x, 0) / a.scores.length };
  };
  try {
    const before = tf.memory().numTensors;
    const result = await trainPpo(m, prompts, { ...options, ...extra }, { runDir, tracker, evaluate, decode: (ids) => ids.join(' ') });
    return { ...result, leaked: tf.memory().numTensors - before };
  } finally {
    m.dispose();
  }
}

const withoutTimestamps = (rows: Array<Record<string, number>>) => rows.map(({ timestamp: _t, ...rest }) => rest);

describe('trainPpo', () => {
  test('stop after 2 of 4 iterations, resume: every logged metric equals the uninterrupted run', async () => {
    const full = tmp();
    const uninterrupted = await run(full);
    expect(uninterrupted).toMatchObject({ iterations: 4, stopped: false, leaked: 0 });

    const split = tmp();
    const first = await run(split, { stopAfter: 2 });
    expect(first).toMatchObject({ iterations: 2, stopped: true });
    expect(existsSync(join(split, 'checkpoints', 'step_2'))).toBe(true);
    const state = JSON.parse(readFileSync(join(split, 'checkpoints', 'step_2', 'trainer_state.json'), 'utf8'));
    expect(state.kl_controller.kind).toBe('adaptive');
    expect(state.kl_controller.value).not.toBe(0.1);
    expect(state.rng_state).toHaveLength(4);
    const second = await run(split);
    expect(second).toMatchObject({ iterations: 4, stopped: false });
    expect(second.history).toHaveLength(2);

    const a = withoutTimestamps(readMetricsJsonl(join(full, 'metrics.jsonl')));
    const b = withoutTimestamps(readMetricsJsonl(join(split, 'metrics.jsonl')));
    // eval at 0, iterations 1 and 2, eval at 2, iterations 3 and 4, eval at 4
    expect(a.map((r) => r.step)).toEqual([0, 1, 2, 2, 3, 4, 4]);
    expect(b).toEqual(a);

    // The metrics are TRL's, and the run did something: β moved, the policy moved away from π_old.
    const iters = a.filter((r) => 'objective/kl' in r);
    for (const key of ['objective/kl', 'objective/entropy', 'objective/non_score_reward', 'objective/rlhf_reward', 'objective/scores',
      'policy/approxkl_avg', 'policy/clipfrac_avg', 'loss/policy_avg', 'loss/value_avg', 'val/clipfrac_avg',
      'val/explained_variance', 'kl_coef', 'response/length_mean', 'response/eos_rate']) {
      expect(iters[0]).toHaveProperty([key]);
    }
    expect(new Set(iters.map((r) => r.kl_coef)).size).toBe(4);
    expect(iters[3]!['policy/approxkl_avg']).toBeGreaterThan(0);
    iters.forEach((r) => expect(r['policy/sampler_logprob_diff']).toBeLessThan(1e-5));
    expect(readdirSync(join(full, 'samples'))).toEqual(['samples_iter_000002.json', 'samples_iter_000004.json']);
    const table = JSON.parse(readFileSync(join(full, 'samples', 'samples_iter_000002.json'), 'utf8'));
    expect(table.columns).toEqual(['iteration', 'prompt', 'response', 'score', 'kl']);
    expect(table.data).toHaveLength(2);
  });
});
