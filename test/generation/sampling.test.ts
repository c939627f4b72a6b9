import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { drawPlainRows } from '../../src/generation/device_draw.js';
import {
  argmax,
  chooseToken,
  drawFromLogProbs,
  logSoftmax,
  samplingLogProbs,
  topKFilter,
  topPFilter,
} from '../../src/generation/sampling.js';

const probsOf = (logp: Float64Array) => Array.from(logp, Math.exp);

describe('sampling', () => {
  test('logSoftmax of [0, ln 3] is [ln 1/4, ln 3/4]', () => {
    const l = logSoftmax([0, Math.log(3)]);
    expect(l[0]).toBeCloseTo(Math.log(0.25), 12);
    expect(l[1]).toBeCloseTo(Math.log(0.75), 12);
  });

  test('greedy: one-hot on the argmax (first on ties), no random number drawn', () => {
    const logp = samplingLogProbs([1, 5, 5, 2], { temperature: 0, topK: 0, topP: 1 });
    expect(Array.from(logp)).toEqual([-Infinity, 0, -Infinity, -Infinity]);
    const rng = new Rng(1);
    const state = rng.getState();
    expect(chooseToken(logp, { temperature: 0, topK: 0, topP: 1 }, rng)).toBe(1);
    expect(rng.getState()).toEqual(state);
    expect(argmax([3, 1, 3])).toBe(0);
  });

  test('temperature divides the logits: T = 2 on [0, ln 9] gives [1/4, 3/4]', () => {
    const p = probsOf(samplingLogProbs([0, Math.log(9)], { temperature: 2, topK: 0, topP: 1 }));
    expect(p[0]).toBeCloseTo(0.25, 12);
    expect(p[1]).toBeCloseTo(0.75, 12);
  });

  test('top-k keeps the k largest and ties with the k-th', () => {
    const s = Float64Array.from([1, 4, 3, 3, 0]);
    topKFilter(s, 2);
    expect(Array.from(s)).toEqual([-Infinity, 4, 3, 3, -Infinity]);
  });

  test('top-p keeps the smallest head reaching p (HF rule: drop cumulative tail ≤ 1 − p)', () => {
    // probabilities 0.5, 0.3, 0.15, 0.05 (given as logs).
    const base = [0.5, 0.3, 0.15, 0.05].map(Math.log);
    const at = (p: number) => {
      const s = Float64Array.from(base);
      topPFilter(s, p);
      return Array.from(s, (v) => (v === -Infinity ? 0 : 1));
    };
    // cumulative from the least likely: 0.05, 0.2, 0.5, 1
    expect(at(0.45)).toEqual([1, 0, 0, 0]); // drop cum ≤ 0.55
    expect(at(0.75)).toEqual([1, 1, 0, 0]); // drop cum ≤ 0.25
    expect(at(0.85)).toEqual([1, 1, 1, 0]); // drop cum ≤ 0.15
    expect(at(0.01)).toEqual([1, 0, 0, 0]); // the top token always stays
    const p = probsOf(samplingLogProbs(base, { temperature: 1, topK: 0, topP: 0.75 }));
    expect(p[0]).toBeCloseTo(0.625, 12); // 0.5 / 0.8
    expect(p[1]).toBeCloseTo(0.375, 12);
  });

  test('banned ids (EOS under min_new_tokens) get probability 0', () => {
    const p = probsOf(samplingLogProbs([0, 0, 0, 0], { temperature: 1, topK: 0, topP: 1 }, [2]));
    expect(p.map((x) => Number(x.toFixed(12)))).toEqual([1 / 3, 1 / 3, 0, 1 / 3].map((x) => Number(x.toFixed(12))));
  });

  test('inverse-CDF draw over probabilities [0.25, 0, 0.75]', () => {
    const logp = Float64Array.from([Math.log(0.25), -Infinity, Math.log(0.75)]);
    expect(drawFromLogProbs(logp, 0)).toBe(0);
    expect(drawFromLogProbs(logp, 0.2499)).toBe(0);
    expect(drawFromLogProbs(logp, 0.25)).toBe(2);
    expect(drawFromLogProbs(logp, 0.999999)).toBe(2);
  });

  test('seeded draws follow the Rng: frequencies match the distribution', () => {
    const rng = new Rng(42);
    const logp = Float64Array.from([0.1, 0.2, 0.7].map(Math.log));
    const counts = [0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[chooseToken(logp, { temperature: 1, topK: 0, topP: 1 }, rng)]!++;
    expect(Math.abs(counts[0]! / 20000 - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(counts[2]! / 20000 - 0.7)).toBeLessThan(0.015);
  });
});

describe('drawPlainRows (the plain draw on the backend) against samplingLogProbs + chooseToken', () => {
  const vocab = 50;
  const rows = 4;
  const logits = new Rng(3).fillNormal(new Float32Array(rows * vocab), 2);
  const row = (r: number) => logits.subarray(r * vocab, (r + 1) * vocab);
  const reference = (temperature: number, seed: number) => {
    const rng = new Rng(seed);
    const opts = { temperature, topK: 0, topP: 1 };
    return Array.from({ length: rows }, (_, r) => {
      const logp = samplingLogProbs(row(r), opts);
      const token = chooseToken(logp, opts, rng);
      return { token, logprob: temperature === 0 ? 0 : logp[token]!, rawLogprob: logSoftmax(row(r))[token]! };
    });
  };

  test.each(['cpu', 'wasm'] as const)('drawPlainRows on %s matches (float32: log-probs to 1e-5)', async (backend) => {
    await initEngine({ backend });
    try {
      for (const temperature of [0, 1, 0.6]) {
        for (const seed of [1, 2, 3]) {
          const rng = new Rng(seed);
          const uniforms = temperature === 0 ? [] : Array.from({ length: rows }, () => rng.uniform());
          const t = tf.tensor2d(logits, [rows, vocab]);
          const got = drawPlainRows(t, temperature, uniforms);
          t.dispose();
          reference(temperature, seed).forEach((want, r) => {
            expect(got[r]!.token).toBe(want.token);
            expect(Math.abs(got[r]!.logprob - want.logprob)).toBeLessThan(1e-5);
            expect(Math.abs(got[r]!.rawLogprob - want.rawLogprob)).toBeLessThan(1e-5);
          });
        }
      }
    } finally {
      await initEngine({ backend: 'cpu' });
    }
  });
});
