/**
 * Gradient checkpointing (src/model/checkpointing.ts): the same loss and gradients as the plain
 * backward pass — full fine-tuning and LoRA with dropout (replayed masks) — with a lower peak of
 * tensor memory, and no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, trainableVariables } from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { lossGrads as lossGradsOf } from '../helpers/loss-grads.js';

const cfg = llamaConfig({ vocab_size: 48, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 6, num_attention_heads: 4, num_key_value_heads: 2 });
const rows = new Rng(7);
const IDS = Array.from({ length: 3 }, () => Array.from({ length: 24 }, () => rows.int(48)));
const MASK = IDS.map((r, i) => r.map((_, j) => (i === 1 && j < 3 ? 0 : 1)));

function lossGrads(model: LlamaModel, vars: tf.Variable[], dropoutRng: Rng): Promise<{ loss: number; grads: Float32Array[]; peak: number }> {
  dropoutRng.setState(new Rng(123).getState()); // same dropout masks for both runs
  return lossGradsOf(model, vars, IDS, MASK);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function compare(model: LlamaModel, vars: tf.Variable[], rng: Rng): Promise<void> {
  model.gradientCheckpointing = false;
  const plain = await lossGrads(model, vars, rng);
  model.gradientCheckpointing = true;
  model.checkpointRng = rng;
  const ckpt = await lossGrads(model, vars, rng);
  model.gradientCheckpointing = false;
  expect(Math.abs(ckpt.loss - plain.loss)).toBeLessThan(1e-5);
  let nonzero = 0;
  plain.grads.forEach((g, i) => {
    expect(maxAbsDiff(ckpt.grads[i]!, g)).toBeLessThan(1e-5);
    if (g.some((x) => x !== 0)) nonzero++;
  });
  expect(nonzero).toBe(vars.length); // every variable got a real gradient
  expect(ckpt.peak).toBeLessThan(plain.peak);
}

describe.each(['cpu', 'wasm'] as const)('gradient checkpointing (%s)', (backend) => {
  beforeAll(async () => {
    await initEngine({ backend });
  });

  test('full fine-tuning: same loss and gradients, lower peak', async () => {
    const model = initLlama(cfg, new Rng(1));
    await compare(model, [...model.params.values()], new Rng(0));
    model.dispose();
  });

  test.each([
    ['qwen3 (q/k norm, biases)', { model_type: 'qwen3', head_dim: 8, attention_bias: true }],
    ['mistral (window 5 over 24 positions)', { model_type: 'mistral', sliding_window: 5 }],
  ] as const)('full fine-tuning of %s: same loss and gradients, lower peak', async (_name, family) => {
    const model = initLlama(llamaConfig({ ...cfg, ...family }), new Rng(4));
    await compare(model, [...model.params.values()], new Rng(0));
    model.dispose();
  });

  test('LoRA with dropout: same gradients for every adapter (masks replayed), lower peak', async () => {
    const model = initLlama(cfg, new Rng(2));
    const rng = new Rng(0);
    tf.tidy(() => void injectLora(model, { targetModules: 'all-linear', r: 4, alpha: 8, dropout: 0.2, rng, dropoutRng: rng }));
    // B starts at zero (no gradient would reach A): give it values.
    const init = new Rng(3);
    for (const [name, v] of trainableVariables(model)) {
      if (name.includes('lora_B')) v.assign(tf.tensor(init.fillNormal(new Float32Array(v.size), 0.1), v.shape));
    }
    await compare(model, [...trainableVariables(model).values()], rng);
    model.dispose();
  });
});
