import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { UserError } from '../../src/errors.js';
import {
  injectLora,
  loraAdapters,
  mergeLora,
  trainableVariables,
  unloadLora,
  unmergeLora,
  withAdaptersDisabled,
} from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, attachScoreHead, type LlamaModel } from '../../src/model/llama.js';
import { maskedCrossEntropyMean } from '../../src/training/loss.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const config = llamaConfig({ vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
const ids = [[3, 7, 1, 30, 12], [5, 5, 9, 2, 0]];

function logits(model: LlamaModel): Float32Array {
  return tf.tidy(() => model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Give every B matrix random values so the adapters change the output. */
function randomizeB(model: LlamaModel, seed: number): void {
  const rng = new Rng(seed);
  for (const a of loraAdapters(model).values()) {
    tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 0.5), a.B.shape)));
  }
}

describe('LoRA on LlamaModel', () => {
  test('B = 0 gives exactly the base output; adapters on every projection of all-linear', () => {
    const model = initLlama(config, new Rng(1));
    const base = logits(model);
    const adapters = injectLora(model, { targetModules: 'all-linear', r: 4, alpha: 8, rng: new Rng(2) });
    expect(adapters.size).toBe(14);
    expect(adapters.has('lm_head')).toBe(false);
    expect(adapters.get('model.layers.1.mlp.down_proj')!.A.shape).toEqual([4, 24]);
    expect(adapters.get('model.layers.1.mlp.down_proj')!.B.shape).toEqual([16, 4]);
    expect(Array.from(logits(model))).toEqual(Array.from(base));
    unloadLora(model, { merge: false });
    model.dispose();
  });

  test('merged = unmerged within 1e-5; unmerge restores the base weights; disabled = base exactly', () => {
    const model = initLlama(config, new Rng(1));
    const base = logits(model);
    const w0 = model.param('model.layers.0.self_attn.q_proj.weight').dataSync().slice();
    injectLora(model, { targetModules: ['q_proj', 'v_proj', 'down_proj'], r: 2, alpha: 4, rng: new Rng(2) });
    expect([...loraAdapters(model).keys()]).toEqual([
      'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.0.mlp.down_proj',
      'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj', 'model.layers.1.mlp.down_proj',
    ]);
    randomizeB(model, 3);
    const adapted = logits(model);
    expect(maxAbsDiff(adapted, base)).toBeGreaterThan(1e-3);
    expect(Array.from(withAdaptersDisabled(model, () => logits(model)))).toEqual(Array.from(base));

    const before = tf.memory().numTensors;
    mergeLora(model);
    expect(tf.memory().numTensors).toBe(before);
    expect(maxAbsDiff(logits(model), adapted)).toBeLessThan(1e-5);
    expect(() => withAdaptersDisabled(model, () => 0)).toThrow(/merged/);
    unmergeLora(model);
    expect(maxAbsDiff(model.param('model.layers.0.self_attn.q_proj.weight').dataSync(), w0)).toBeLessThan(1e-6);
    expect(maxAbsDiff(logits(model), adapted)).toBeLessThan(1e-5);
    unloadLora(model, { merge: false });
    model.dispose();
  });

  test('only adapter variables (and modules_to_save) receive gradients', () => {
    const model = initLlama(config, new Rng(1));
    attachScoreHead(model, new Rng(4));
    injectLora(model, { targetModules: 'all-linear', r: 2, alpha: 2, modulesToSave: ['score'], rng: new Rng(2) });
    const trainable = trainableVariables(model);
    expect(trainable.size).toBe(14 * 2 + 1);
    expect(trainable.get('score.weight')).toBe(model.param('score.weight'));
    const labels = tf.tensor2d([[7, 1, 30, 12, -100], [5, 9, 2, 0, -100]], undefined, 'int32');
    const inputIds = tf.tensor2d(ids, undefined, 'int32');
    // Every variable the engine knows, base weights included: only the trainable ones get a gradient.
    const { value, grads } = tf.variableGrads(() => {
      const { logits: l, hidden } = model.forward({ inputIds, training: true });
      const score = model.scoreHead!.scoreAllTokens(hidden);
      return tf.add(maskedCrossEntropyMean(l, labels), tf.mean(score)) as tf.Scalar;
    });
    value.dispose();
    const withGrad = Object.keys(grads).filter((k) => grads[k] != null);
    const expected = [...trainable.values()].map((v) => v.name);
    expect(withGrad.sort()).toEqual(expected.sort());
    // B = 0 at init, so A's gradient is 0 and B's is not — the LoRA signature.
    const q = loraAdapters(model).get('model.layers.0.self_attn.q_proj')!;
    expect(Math.max(...Array.from(grads[q.A.name]!.dataSync(), Math.abs))).toBe(0);
    expect(Math.max(...Array.from(grads[q.B.name]!.dataSync(), Math.abs))).toBeGreaterThan(0);
    Object.values(grads).forEach((g) => g?.dispose());
    unloadLora(model, { merge: false });
    model.dispose();
  });

  test('unload restores trainable flags; merge-and-unload keeps the adapted function', () => {
    const model = initLlama(config, new Rng(1));
    injectLora(model, { targetModules: ['o_proj'], r: 2, alpha: 2, rng: new Rng(2) });
    expect(model.param('model.embed_tokens.weight').trainable).toBe(false);
    randomizeB(model, 5);
    const adapted = logits(model);
    unloadLora(model, { merge: true });
    expect(model.adapters.size).toBe(0);
    expect(model.param('model.embed_tokens.weight').trainable).toBe(true);
    expect(maxAbsDiff(logits(model), adapted)).toBeLessThan(1e-5);
    unloadLora(model, { merge: false });
    model.dispose();
  });

  test('a target that matches nothing is a user error naming it', () => {
    const model = initLlama(config, new Rng(1));
    expect(() => injectLora(model, { targetModules: ['q_proj', 'qkv_proj'], r: 2, alpha: 2, rng: new Rng(2) })).toThrow(UserError);
    expect(() => injectLora(model, { targetModules: ['qkv_proj'], r: 2, alpha: 2, rng: new Rng(2) })).toThrow(/"qkv_proj".*valid: q_proj/);
    expect(() => injectLora(model, { targetModules: ['q_proj'], r: 2, alpha: 2, modulesToSave: ['classifier'], rng: new Rng(2) })).toThrow(/"classifier"/);
    unloadLora(model, { merge: false });
    model.dispose();
  });
});
