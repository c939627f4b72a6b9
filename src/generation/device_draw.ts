/**
 * The plain draw (no top-k, no top-p, no banned ids: what PPO rollouts use) for every row at once:
 * the softmax on the TF.js backend (one fused kernel; exp over B·V logits is the costly part in JS)
 * and the inverse-CDF scan over the read-back probabilities in JS (additions only). The same rule
 * as `samplingLogProbs` + `chooseToken` — one uniform number per row, the first token whose
 * cumulative probability exceeds it (compared as u · Σp) — but on float32 probabilities: a draw
 * within float32 rounding of a boundary may pick the neighbour, and log-probs (log p) agree with
 * the float64 ones to ~1e-6.
 */
import * as tf from '@tensorflow/tfjs-core';
import { argmax, logSumExpRow, type PlainDraw } from './sampling.js';

/**
 * logits [B, V]; `uniforms` one per row (none when greedy, temperature 0: argmax of the logits,
 * first on ties). Returns per row the token, its log-prob under the sampling distribution (0 when
 * greedy) and under the raw logits.
 */
export function drawPlainRows(logits: tf.Tensor2D, temperature: number, uniforms: readonly number[]): PlainDraw[] {
  const [b, v] = logits.shape;
  const scaled = temperature !== 0 && temperature !== 1;
  const [probs, rawProbs] = tf.tidy(() => {
    const raw = tf.softmax(logits);
    return scaled ? [tf.softmax(tf.div(logits, temperature)), raw] : [raw, raw];
  });
  const p = probs.dataSync() as Float32Array;
  const rawP = scaled ? (rawProbs.dataSync() as Float32Array) : p;
  tf.dispose([probs, rawProbs]);
  let values: Float32Array | null = null; // the logits, read back only when needed
  const logitsRow = (r: number): Float32Array => {
    values ??= logits.dataSync() as Float32Array;
    return values.subarray(r * v, (r + 1) * v);
  };
  const out: PlainDraw[] = [];
  for (let r = 0; r < b; r++) {
    const row = p.subarray(r * v, (r + 1) * v);
    let token: number;
    let logprob = 0;
    if (temperature === 0) {
      token = argmax(logitsRow(r));
    } else {
      let total = 0;
      for (let i = 0; i < v; i++) total += row[i]!;
      const target = uniforms[r]! * total;
      let cum = 0;
      token = -1;
      for (let i = 0; i < v; i++) {
        cum += row[i]!;
        if (target < cum) {
          token = i;
          break;
        }
      }
      if (token < 0) { // rounding: the last token with any mass
        token = v - 1;
        while (token > 0 && row[token] === 0) token--;
      }
      logprob = Math.log(row[token]! / total);
    }
    let rawLogprob = logprob;
    if (temperature !== 1) {
      const rawRow = rawP.subarray(r * v, (r + 1) * v);
      let rawTotal = 0;
      for (let i = 0; i < v; i++) rawTotal += rawRow[i]!;
      rawLogprob = Math.log(rawRow[token]! / rawTotal);
      // float32 underflow (a token the raw model all but rules out): the float64 value from the logits.
      if (!Number.isFinite(rawLogprob)) rawLogprob = logitsRow(r)[token]! - logSumExpRow(logitsRow(r));
    }
    out.push({ token, logprob, rawLogprob });
  }
  return out;
}
