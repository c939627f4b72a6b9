/**
 * The lean backward pass (src/engine/backprop.ts) gives the gradients tfjs-core's own tape walk
 * gives — on a Llama model, full and LoRA, on cpu and wasm — with a lower memory peak and no leak.
 */
import * as tf from '@tensorflow/tfjs-core';
import { installLeanBackprop, leanBackpropInstalled, nodesBetween, uninstallLeanBackprop, type TapeNode } from '../../src/engine/backprop.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, trainableVariables } from '../../src/lora/inject.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { lossGrads as lossGradsOf } from '../helpers/loss-grads.js';

const cfg = llamaConfig({ vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
const IDS = [[1, 5, 9, 2, 7, 3, 11, 4], [6, 0, 8, 12, 30, 2, 2, 9]];
const MASK = [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]];

/** Loss of one batch and its gradients (values copied out), and the peak bytes of computing them. */
function lossGrads(model: LlamaModel, vars: tf.Variable[]): Promise<{ loss: number; grads: Float32Array[]; peak: number }> {
  return lossGradsOf(model, vars, IDS, MASK);
}

async function stockThenLean(model: LlamaModel, vars: tf.Variable[]): Promise<[Awaited<ReturnType<typeof lossGrads>>, Awaited<ReturnType<typeof lossGrads>>]> {
  uninstallLeanBackprop();
  try {
    const stock = await lossGrads(model, vars);
    installLeanBackprop();
    return [stock, await lossGrads(model, vars)];
  } finally {
    installLeanBackprop();
  }
}

describe.each(['cpu', 'wasm'] as const)('lean backprop on %s', (backend) => {
  beforeAll(async () => {
    await initEngine({ backend });
  });

  it('is what initEngine installs', () => {
    expect(leanBackpropInstalled()).toBe(true);
  });

  it('full fine-tuning of a Llama model: same loss and gradients as the stock walk, lower peak', async () => {
    const model = initLlama(cfg, new Rng(5));
    const vars = [...model.params.values()];
    const [stock, lean] = await stockThenLean(model, vars);
    expect(lean.loss).toBe(stock.loss);
    lean.grads.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(stock.grads[i]!)));
    expect(lean.peak).toBeLessThan(0.8 * stock.peak);
    model.dispose();
  });

  it('LoRA on every linear: same gradients of A and B', async () => {
    const model = initLlama(cfg, new Rng(6));
    const rng = new Rng(7);
    const adapters = injectLora(model, { r: 4, alpha: 8, targetModules: 'all-linear', rng });
    // B starts at zero; give it values so every gradient path is exercised.
    for (const a of adapters.values()) a.B.assign(tf.tidy(() => tf.mul(tf.onesLike(a.B), 0.01)));
    const vars = [...trainableVariables(model).values()];
    const [stock, lean] = await stockThenLean(model, vars);
    expect(lean.loss).toBe(stock.loss);
    lean.grads.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(stock.grads[i]!)));
    expect(lean.peak).toBeLessThan(stock.peak);
    for (const a of adapters.values()) a.dispose();
    model.dispose();
  });
});

describe('lean backprop edge cases (cpu)', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'cpu' });
  });

  it('second-order gradients still work: d²/dx² x³ = 6x', () => {
    const x = tf.scalar(2);
    const d2 = tf.grad((v: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.pow(u, 3))(v))(x);
    expect(d2.dataSync()[0]).toBeCloseTo(12, 5);
    tf.dispose([x, d2]);
  });

  it('a gradient handed through to two inputs (the same tensor object) is not freed early', () => {
    // f(a, b) = a + b with a gradient that returns dy itself for both inputs.
    const passThrough = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [a, b] = args as [tf.Tensor, tf.Tensor];
      return { value: tf.add(a, b), gradFunc: (dy: tf.Tensor) => [dy, dy] };
    }) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    const x = tf.tensor1d([1, 2]);
    const w = tf.tensor1d([3, 5]);
    const before = tf.memory().numTensors;
    // y = Σ w · pass(2x, x²): dy/dx = w·2 + w·2x.
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(w, passThrough(tf.mul(v, 2), tf.square(v)))))(x);
    expect(Array.from(g.dataSync())).toEqual([3 * 2 + 3 * 2 * 1, 5 * 2 + 5 * 2 * 2]);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
  });

  it('a caller-given dy is left to the caller', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const dy = tf.tensor1d([1, 10, 100]);
    const g = tf.grad((v: tf.Tensor) => tf.mul(v, 2))(x, dy);
    expect(Array.from(g.dataSync())).toEqual([2, 20, 200]);
    expect(dy.isDisposed).toBe(false);
    tf.dispose([x, dy, g]);
  });

  it('nodesBetween keeps only nodes from x to y, with inputs pruned to those that depend on x', () => {
    const t = (id: number) => ({ id, shape: [1] }) as unknown as tf.Tensor;
    const x = t(1); const c = t(2); const a = t(3); const d = t(4); const y = t(5); const side = t(6);
    const tape: TapeNode[] = [
      { id: 10, kernelName: 'Mul', inputs: { a: x, b: c }, outputs: [a] }, // on the path
      { id: 11, kernelName: 'Exp', inputs: { x: c }, outputs: [d] }, // not from x
      { id: 12, kernelName: 'Neg', inputs: { x: a }, outputs: [side] }, // does not lead to y
      { id: 13, kernelName: 'Add', inputs: { a, b: d }, outputs: [y] },
    ];
    const path = nodesBetween(tape, [x], y);
    expect(path.map((n) => [n.id, Object.keys(n.inputs)])).toEqual([[10, ['a']], [13, ['a']]]);
  });
});

describe('wasm Identity shares data', () => {
  it('a clone outlives its source, and holds the same values', async () => {
    await initEngine({ backend: 'wasm' });
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
  });
});
