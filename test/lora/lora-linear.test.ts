import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { kaimingUniformBound, LoraLinear, loraScaling } from '../../src/lora/lora-linear.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('LoraLinear', () => {
  test('output = base + (alpha/r)·x·Aᵀ·Bᵀ against hand-computed numbers', () => {
    const lora = new LoraLinear({ inDim: 2, outDim: 2, rank: 1, alpha: 2, rng: new Rng(1) });
    lora.A.assign(tf.tensor2d([[1, 2]]));
    lora.B.assign(tf.tensor2d([[0.5], [-1]]));
    // x·Aᵀ = 3; ·Bᵀ = [1.5, −3]; ·2 = [3, −6]; + base [1, 1]
    const out = lora.apply(tf.tensor3d([[[1, 1]]]), tf.tensor3d([[[1, 1]]]));
    expect(out.shape).toEqual([1, 1, 2]);
    expect(Array.from(out.dataSync())).toEqual([4, -5]);
    expect(Array.from(lora.deltaWeight().dataSync())).toEqual([1, 2, -2, -4]);
  });

  test('init: A ~ U(±1/√in) (PEFT kaiming_uniform a=√5), B = 0; scaling alpha/r or alpha/√r', () => {
    expect(kaimingUniformBound(16)).toBeCloseTo(0.25, 12);
    const lora = new LoraLinear({ inDim: 16, outDim: 8, rank: 4, alpha: 8, rng: new Rng(3) });
    const a = lora.A.dataSync();
    expect(lora.A.shape).toEqual([4, 16]);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.2);
    expect(lora.B.shape).toEqual([8, 4]);
    expect(Array.from(lora.B.dataSync()).every((v) => v === 0)).toBe(true);
    expect(lora.scaling).toBe(2);
    expect(loraScaling(8, 4, true)).toBe(4);
  });

  test('dropout only in training, inverted scaling, masks from the given Rng', () => {
    let training = false;
    const make = () => new LoraLinear({ inDim: 64, outDim: 1, rank: 1, alpha: 1, dropout: 0.5, rng: new Rng(5), dropoutRng: new Rng(9), isTraining: () => training });
    const lora = make();
    lora.A.assign(tf.ones([1, 64]));
    lora.B.assign(tf.ones([1, 1]));
    const x = tf.ones([1, 64]);
    const base = tf.zeros([1, 1]);
    expect(lora.apply(x, base).dataSync()[0]).toBe(64);
    training = true;
    const y = lora.apply(x, base).dataSync()[0]!;
    // kept inputs count twice (1 / (1 − 0.5)): an even number in (0, 128), not 64 by accident of seed 9
    expect(y % 2).toBe(0);
    expect(y).not.toBe(64);
    const again = make();
    again.A.assign(tf.ones([1, 64]));
    again.B.assign(tf.ones([1, 1]));
    expect(again.apply(x, base).dataSync()[0]).toBe(y);
  });

  test('merged adapter adds nothing in apply', () => {
    const lora = new LoraLinear({ inDim: 2, outDim: 2, rank: 1, alpha: 1, rng: new Rng(1) });
    lora.B.assign(tf.ones([2, 1]));
    lora.merged = true;
    const base = tf.tensor2d([[1, 2]]);
    expect(lora.apply(tf.ones([1, 2]), base)).toBe(base);
  });
});
