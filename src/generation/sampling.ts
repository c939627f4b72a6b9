/**
 * Turning one row of logits into a token, on the CPU in float64, in Hugging Face's order:
 * logits processors (min_new_tokens bans EOS), then warpers (temperature, top-k, top-p).
 * Temperature 0 means greedy: the sampling distribution is one-hot on the argmax.
 */
import type { Rng } from '../engine/rng.js';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 = off). Ties with the k-th value are kept, as in HF. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = off). */
  topP: number;
}

/** log-softmax of a row, in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** Index of the largest value (the first one on ties, like argmax in torch). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Log-probabilities of the sampling distribution: −Infinity for tokens that cannot be drawn.
 * `banned` ids (EOS before min_new_tokens) are removed first.
 */
export function samplingLogProbs(logits: ArrayLike<number>, opts: SamplingOptions, banned: readonly number[] = []): Float64Array {
  const scores = Float64Array.from(logits as ArrayLike<number>);
  for (const id of banned) if (id >= 0 && id < scores.length) scores[id] = -Infinity;
  if (opts.temperature === 0) {
    const out = new Float64Array(scores.length).fill(-Infinity);
    out[argmax(scores)] = 0;
    return out;
  }
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! / opts.temperature;
  if (opts.topK > 0 && opts.topK < scores.length) topKFilter(scores, opts.topK);
  if (opts.topP < 1) topPFilter(scores, opts.topP);
  return logSoftmax(scores);
}

/** In place: −Infinity for every score below the k-th largest. */
export function topKFilter(scores: Float64Array, k: number): void {
  const sorted = Float64Array.from(scores).sort(); // ascending
  const kth = sorted[sorted.length - k]!;
  for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
}

/**
 * In place, as HF's TopPLogitsWarper: sort ascending, and remove tokens whose cumulative probability
 * (from the least likely up) is ≤ 1 − p; the most likely token always stays.
 */
export function topPFilter(scores: Float64Array, p: number): void {
  const probs = logSoftmax(scores).map(Math.exp);
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]!);
  let cum = 0;
  for (let r = 0; r < order.length - 1; r++) {
    const i = order[r]!;
    cum += probs[i]!;
    if (cum <= 1 - p) scores[i] = -Infinity;
    else break;
  }
}

/** Draw an index from log-probabilities with one uniform number (inverse CDF). */
export function drawFromLogProbs(logp: Float64Array, u: number): number {
  let cum = 0;
  let last = -1;
  for (let i = 0; i < logp.length; i++) {
    if (logp[i] === -Infinity) continue;
    cum += Math.exp(logp[i]!);
    last = i;
    if (u < cum) return i;
  }
  return last; // rounding left cum slightly below 1
}

/** A drawn token with its log-probability under the sampling distribution and under the raw logits. */
export interface PlainDraw {
  token: number;
  logprob: number;
  rawLogprob: number;
}

/** log Σ exp(x) of a row, in float64. */
export function logSumExpRow(logits: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return max + Math.log(sum);
}

/** Choose the next token of one row; greedy draws no random number. */
export function chooseToken(logp: Float64Array, opts: SamplingOptions, rng: Rng | undefined): number {
  if (opts.temperature === 0) return argmax(logp);
  if (!rng) throw new Error('sampling with temperature > 0 needs an Rng');
  return drawFromLogProbs(logp, rng.uniform());
}
