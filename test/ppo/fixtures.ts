/** Tiny random models for the PPO tests: a Llama policy with LoRA, a reward model and a value model (or a LoRA critic on the reward model). */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, unloadLora } from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama } from '../../src/model/llama.js';
import type { PpoModels, PpoOptions } from '../../src/ppo/recipe.js';
import { ScalarHead } from '../../src/model/heads.js';
import { newVariable } from '../../src/model/variables.js';
import { rewardModelLoraCritic, valueModelCritic } from '../../src/ppo/rollout.js';

export const EOS = 2;
export const PAD = 0;

export const tinyConfig = llamaConfig({
  vocab_size: 8,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  eos_token_id: EOS,
  pad_token_id: PAD,
  initializer_range: 0.3, // peaked enough that sampled responses differ and EOS happens
});

export interface TinySetup extends PpoModels {
  dispose(): void;
}

/** The LoRA policy both setups share; LoRA B is randomised so that π ≠ π_ref from the start. */
function tinyPolicy(): ReturnType<typeof initLlama> {
  const policy = initLlama(tinyConfig, new Rng(1));
  const loraRng = new Rng(3);
  const adapters = injectLora(policy, { targetModules: ['q_proj', 'v_proj', 'o_proj'], r: 4, alpha: 8, rng: loraRng });
  for (const a of adapters.values()) {
    tf.tidy(() => a.B.assign(tf.tensor(loraRng.fillNormal(new Float32Array(a.B.size), 0.2), a.B.shape)));
  }
  return policy;
}

/** Same seeds → bit-identical models. */
export function tinyModels(): TinySetup {
  const policy = tinyPolicy();
  const rewardModel = initLlama(tinyConfig, new Rng(2), { lmHead: false, score: true });
  const valueModel = initLlama(tinyConfig, new Rng(2), { lmHead: false, score: true });
  return {
    policy,
    rewardModel,
    critic: valueModelCritic(valueModel),
    dispose: () => {
      unloadLora(policy, { merge: false });
      policy.dispose();
      rewardModel.dispose();
      valueModel.dispose();
    },
  };
}

/**
 * The same policy and reward model, with ppo.critic: reward_model_lora — LoRA adapters on the
 * reward model itself and a value head copied from its score head (no value model).
 */
export function tinyLoraCriticModels(): TinySetup {
  const policy = tinyPolicy();
  const rewardModel = initLlama(tinyConfig, new Rng(2), { lmHead: false, score: true });
  injectLora(rewardModel, { targetModules: ['q_proj', 'v_proj', 'o_proj'], r: 4, alpha: 8, rng: new Rng(4) });
  const score = rewardModel.scoreHead!.weight;
  const head = new ScalarHead(newVariable((score.dataSync() as Float32Array).slice(), score.shape.slice()));
  return {
    policy,
    rewardModel,
    critic: rewardModelLoraCritic(rewardModel, head),
    dispose: () => {
      unloadLora(policy, { merge: false });
      unloadLora(rewardModel, { merge: false });
      head.weight.dispose();
      policy.dispose();
      rewardModel.dispose();
    },
  };
}

/** Prompts of 2–5 tokens drawn from the non-special ids. */
export function tinyPrompts(count: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: 2 + rng.int(4) }, () => 3 + rng.int(tinyConfig.vocab_size - 3)));
}

export const sampling = { maxNewTokens: 8, temperature: 1, stopTokenIds: [EOS], padTokenId: PAD };

/** The loop options of the recipe-level PPO tests (4 iterations of rollout 4, minibatch 2). */
export const ppoTestOptions: PpoOptions = {
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
