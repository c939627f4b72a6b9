/**
 * A 2-layer toy transformer — embedding via gather, causal multi-head attention, SiLU MLP,
 * RMSNorm, cross-entropy — has the same gradients on the patched wasm backend as on cpu, and
 * trains on wasm without leaking tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { relativeError } from '../helpers/engine.js';

const VOCAB = 23;
const DIM = 16;
const HEADS = 2;
const HEAD_DIM = DIM / HEADS;
const HIDDEN = 32;
const LAYERS = 2;
const BATCH = 2;
const SEQ = 7;

type Params = Record<string, tf.Tensor>;
type ParamValues = Record<string, { values: Float32Array; shape: number[] }>;

function initialValues(seed: number): ParamValues {
  const rng = new Rng(seed);
  const p: ParamValues = {};
  const add = (name: string, shape: number[], std: number): void => {
    const values = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), std);
    p[name] = { values, shape };
  };
  add('embed', [VOCAB, DIM], 0.5);
  for (let l = 0; l < LAYERS; l++) {
    for (const w of ['wq', 'wk', 'wv', 'wo']) add(`${l}.${w}`, [DIM, DIM], 0.3);
    add(`${l}.up`, [DIM, HIDDEN], 0.3);
    add(`${l}.gate`, [DIM, HIDDEN], 0.3);
    add(`${l}.down`, [HIDDEN, DIM], 0.3);
  }
  add('head', [DIM, VOCAB], 0.3);
  return p;
}

function rmsNorm(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5)));
}

/** [batch, seq, dim] → [batch, heads, seq, headDim] */
function splitHeads(x: tf.Tensor): tf.Tensor {
  return tf.transpose(tf.reshape(x, [BATCH, SEQ, HEADS, HEAD_DIM]), [0, 2, 1, 3]);
}

function loss(p: Params, tokens: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  let h = tf.gather(p['embed']!, tokens); // [batch, seq, dim]
  const causal = tf.linalg.bandPart(tf.ones([SEQ, SEQ]), -1, 0); // [seq, seq] lower triangle
  const maskBias = tf.mul(tf.sub(1, causal), -1e9);
  for (let l = 0; l < LAYERS; l++) {
    const x = rmsNorm(h);
    const q = splitHeads(tf.matMul(x, p[`${l}.wq`]!));
    const k = splitHeads(tf.matMul(x, p[`${l}.wk`]!));
    const v = splitHeads(tf.matMul(x, p[`${l}.wv`]!));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(HEAD_DIM)), maskBias); // [b, h, s, s]
    const attn = tf.matMul(tf.softmax(scores), v); // [b, h, s, headDim]
    const merged = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [BATCH, SEQ, DIM]);
    h = tf.add(h, tf.matMul(merged, p[`${l}.wo`]!));
    const y = rmsNorm(h);
    const gate = tf.matMul(y, p[`${l}.gate`]!);
    const mlp = tf.mul(tf.mul(gate, tf.sigmoid(gate)), tf.matMul(y, p[`${l}.up`]!));
    h = tf.add(h, tf.matMul(mlp, p[`${l}.down`]!));
  }
  const logits = tf.matMul(rmsNorm(h), p['head']!); // [batch, seq, vocab]
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(targets, VOCAB), logp), -1)));
}

function batch(seed: number): { tokens: Int32Array; targets: Int32Array } {
  const rng = new Rng(seed);
  const tokens = Int32Array.from({ length: BATCH * SEQ }, () => rng.int(VOCAB));
  const targets = Int32Array.from(tokens, (t) => (t * 5 + 3) % VOCAB); // a learnable map
  return { tokens, targets };
}

async function lossAndGrads(backend: 'cpu' | 'wasm', init: ParamValues): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
  await initEngine({ backend });
  const { tokens, targets } = batch(2);
  return tf.tidy(() => {
    const params: Params = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
    const names = Object.keys(params);
    const tok = tf.tensor2d(tokens, [BATCH, SEQ], 'int32');
    const tgt = tf.tensor2d(targets, [BATCH, SEQ], 'int32');
    const { value, grads } = tf.valueAndGrads((...ts: tf.Tensor[]) =>
      loss(Object.fromEntries(names.map((n, i) => [n, ts[i]!])), tok, tgt))(names.map((n) => params[n]!));
    return {
      loss: value.dataSync()[0]!,
      grads: Object.fromEntries(names.map((n, i) => [n, Float32Array.from(grads[i]!.dataSync())])),
    };
  });
}

describe('toy transformer', () => {
  it('has the same loss and gradients on wasm as on cpu (1e-4 relative)', async () => {
    const init = initialValues(42);
    const cpu = await lossAndGrads('cpu', init);
    const wasm = await lossAndGrads('wasm', init);
    expect(Math.abs(wasm.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-5);
    expect(cpu.loss).toBeGreaterThan(Math.log(VOCAB) * 0.5); // an untrained model, not a degenerate one
    for (const name of Object.keys(cpu.grads)) {
      const err = relativeError(wasm.grads[name]!, cpu.grads[name]!);
      if (err > 1e-4) throw new Error(`gradient of ${name}: relative error ${err}`);
      expect(cpu.grads[name]!.some((g) => g !== 0)).toBe(true);
    }
  });

  it('trains on wasm: SGD lowers the loss, no tensor leaks', async () => {
    await initEngine({ backend: 'wasm' });
    const init = initialValues(7);
    const vars = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, tf.variable(tf.tensor(v.values, v.shape))]));
    const { tokens, targets } = batch(3);
    const tok = tf.tensor2d(tokens, [BATCH, SEQ], 'int32');
    const tgt = tf.tensor2d(targets, [BATCH, SEQ], 'int32');
    const step = (): number => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => loss(vars, tok, tgt));
      for (const [name, g] of Object.entries(grads)) {
        const v = Object.values(vars).find((x) => x.name === name)!;
        v.assign(tf.sub(v, tf.mul(g, 0.5)));
      }
      return value.dataSync()[0]!;
    });
    const first = step();
    const tensorsAfterFirst = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    expect(last).toBeLessThan(first * 0.7);
    tf.dispose([tok, tgt, ...Object.values(vars)]);
  });
});
