import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { AdamW, decaysByDefault } from '../../src/training/adamw.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

// Expected values computed by hand from torch.optim.AdamW's update rule in float64
// (lr 0.1, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01 for "w", none for the norm).
const W_STEP1 = [0.899000002, -2.09799999];
const W_STEP2 = [0.8714672987058463, -2.1876800978044098];
const NORM_STEP1 = 0.900000005;
const NORM_STEP2 = 0.80000001;

describe('AdamW', () => {
  test('one and two steps match hand-computed torch AdamW values; norms get no weight decay', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const norm = tf.variable(tf.tensor1d([1]));
    const params = new Map([['w', w], ['model.norm.weight', norm]]);
    const opt = new AdamW(params, { weightDecay: 0.01 });
    expect(opt.decayedNames()).toEqual(['w']);
    const before = tf.memory().numTensors;

    const g1 = new Map([['w', tf.tensor1d([0.5, 0.1])], ['model.norm.weight', tf.tensor1d([0.2])]]);
    opt.step(g1, 0.1);
    expect(tf.memory().numTensors).toBe(before + 2); // only the two gradients we made
    const w1 = w.dataSync();
    W_STEP1.forEach((x, i) => expect(w1[i]).toBeCloseTo(x, 6));
    expect(norm.dataSync()[0]).toBeCloseTo(NORM_STEP1, 6);

    const g2 = new Map([['w', tf.tensor1d([-0.25, 0.3])], ['model.norm.weight', tf.tensor1d([0.2])]]);
    opt.step(g2, 0.1);
    const w2 = w.dataSync();
    W_STEP2.forEach((x, i) => expect(w2[i]).toBeCloseTo(x, 6));
    expect(norm.dataSync()[0]).toBeCloseTo(NORM_STEP2, 6);
    expect(opt.stepCount).toBe(2);

    // State: torch's names, moments after two steps.
    const st = opt.exportState();
    expect(st.get('exp_avg.w')!.data[0]).toBeCloseTo(0.02, 7);
    expect(st.get('exp_avg_sq.w')!.data[0]).toBeCloseTo(0.00031225, 9);
    expect(Array.from(st.get('step')!.data)).toEqual([2]);

    [...g1.values(), ...g2.values()].forEach((t) => t.dispose());
    opt.dispose();
    w.dispose();
    norm.dispose();
  });

  test('exported state restores an identical trajectory', () => {
    const mk = () => new Map([['w', tf.variable(tf.tensor1d([1, -2]))]]);
    const grads = [[0.5, 0.1], [-0.25, 0.3], [0.05, -0.7]].map((g) => new Map([['w', tf.tensor1d(g)]]));
    const pa = mk();
    const a = new AdamW(pa);
    grads.forEach((g) => a.step(g, 0.05));

    const pb = mk();
    const b = new AdamW(pb);
    b.step(grads[0]!, 0.05);
    const saved = b.exportState();
    const savedW = pb.get('w')!.dataSync().slice();
    b.dispose();
    const pc = new Map([['w', tf.variable(tf.tensor1d(savedW))]]);
    const c = new AdamW(pc);
    c.importState(saved);
    c.step(grads[1]!, 0.05);
    c.step(grads[2]!, 0.05);
    expect(Array.from(pc.get('w')!.dataSync())).toEqual(Array.from(pa.get('w')!.dataSync()));
    expect(() => c.importState(new Map())).toThrow(/missing exp_avg.w/);
  });

  test('a parameter without a gradient is untouched (no decay either)', () => {
    const a = tf.variable(tf.tensor1d([1]));
    const b = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW(new Map([['a', a], ['b', b]]), { weightDecay: 0.5 });
    const g = tf.tensor1d([1]);
    opt.step(new Map([['a', g]]), 0.1);
    expect(b.dataSync()[0]).toBe(1);
    expect(a.dataSync()[0]).toBeCloseTo(1 * (1 - 0.05) - 0.1, 6);
  });

  test('decay rule: no decay for biases and norm weights', () => {
    expect(decaysByDefault('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(decaysByDefault('model.embed_tokens.weight')).toBe(true);
    expect(decaysByDefault('model.layers.3.input_layernorm.weight')).toBe(false);
    expect(decaysByDefault('model.layers.3.post_attention_layernorm.weight')).toBe(false);
    expect(decaysByDefault('model.norm.weight')).toBe(false);
    expect(decaysByDefault('model.layers.0.self_attn.q_proj.bias')).toBe(false);
  });
});
