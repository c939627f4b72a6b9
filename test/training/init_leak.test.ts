import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { AdamW } from '../../src/training/adamw.js';
import { LoraLinear } from '../../src/lora/lora-linear.js';
import { Rng } from '../../src/engine/rng.js';

beforeAll(async () => { await initEngine({ backend: 'cpu' }); });

test('AdamW and LoraLinear allocate exactly their variables (no stray initial tensors)', () => {
  const p = tf.variable(tf.zeros([3, 4]));
  const before = tf.memory().numTensors;
  const opt = new AdamW(new Map([['w', p]]));
  expect(tf.memory().numTensors - before).toBe(2); // m and v
  const lora = new LoraLinear({ inDim: 4, outDim: 3, rank: 2, alpha: 4, rng: new Rng(0) });
  expect(tf.memory().numTensors - before).toBe(4); // + A and B
  opt.dispose();
  lora.A.dispose(); lora.B.dispose(); p.dispose();
});
