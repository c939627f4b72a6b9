import * as tf from '@tensorflow/tfjs-core';
import { softmaxLastAxis } from '../model/layers.js';

/** Label value that contributes no loss (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/**
 * Labels for next-token prediction, as HF's causal-LM loss shifts them: position t is scored on
 * token t+1, the last position on nothing. Shifting labels (cheap, on the CPU) instead of slicing
 * the logits lets the loss read the model's logits as they are.
 */
export function shiftLabels(labels: number[][]): number[][] {
  return labels.map((row) => [...row.slice(1), IGNORE_INDEX]);
}

/** Number of positions that are scored (label ≠ −100). */
export function countTargets(labels: number[][] | ArrayLike<number>): number {
  let n = 0;
  const rows = isNested(labels) ? labels : [labels];
  for (const row of rows) for (let i = 0; i < row.length; i++) if (row[i] !== IGNORE_INDEX) n++;
  return n;
}

function isNested(x: number[][] | ArrayLike<number>): x is number[][] {
  return Array.isArray(x) && x.length > 0 && Array.isArray(x[0]);
}

/**
 * log Σ exp over the last axis of x [N, V] → [N], with a hand-written gradient: dx = softmax(x) · dy,
 * the softmax recomputed from the saved x. tfjs's composite logSumExp would keep and backprop
 * through max, sub, exp and sum, several more [N, V] tensors for a gradient whose max part is zero.
 * Both directions use the fused softmax kernel rather than an elementwise exp (on wasm, Exp costs
 * ~5× a softmax of the same size): softmax's largest entry is exp(0) / Σ exp(x − max), so
 * logsumexp = max − log(max softmax) (≥ 1/V, so the log never underflows).
 */
export const logSumExpRows = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  const value = tf.tidy(() => tf.sub(tf.max(x, -1), tf.log(tf.max(softmaxLastAxis(x), -1)))); // [N]
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor => tf.tidy(() => {
    const [xs] = saved as [tf.Tensor];
    return tf.mul(softmaxLastAxis(xs), tf.reshape(dy, [-1, 1]));
  });
  return { value, gradFunc };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Token-summed cross-entropy of `logits` [B, T, V] against `labels` [B, T] (int32, −100 = ignore,
 * already aligned with the logits — see {@link shiftLabels}). Returns the *sum* over scored tokens
 * (a scalar tensor, differentiable) and their count, so micro-batches can be combined exactly.
 * Computed as Σ logsumexp(row) − Σ logits[row, label] over scored rows: the label logits are one
 * gather on flat indices (its gradient, UnsortedSegmentSum, every backend has — patched on wasm),
 * so no [B, T, V] one-hot or log-softmax is ever built.
 */
export function maskedCrossEntropySum(logits: tf.Tensor, labels: tf.Tensor): { sum: tf.Scalar; count: number } {
  if (logits.rank !== 3 || labels.rank !== 2) {
    throw new Error(`maskedCrossEntropySum: logits must be [B,T,V] and labels [B,T]; got [${logits.shape}] and [${labels.shape}]`);
  }
  const [b, t, vocab] = logits.shape as [number, number, number];
  if (labels.shape[0] !== b || labels.shape[1] !== t) {
    throw new Error(`maskedCrossEntropySum: labels [${labels.shape}] do not match logits [${logits.shape}]`);
  }
  const labelValues = labels.dataSync();
  const rows: number[] = []; // flat row (b·T + t) of each scored position
  const flatIndex: number[] = []; // its label's flat index into [B·T·V]
  for (let i = 0; i < labelValues.length; i++) {
    const y = labelValues[i]!;
    if (y === IGNORE_INDEX) continue;
    if (y < 0 || y >= vocab || !Number.isInteger(y)) {
      throw new Error(`maskedCrossEntropySum: label ${y} at flat position ${i} is outside [0, ${vocab})`);
    }
    rows.push(i);
    flatIndex.push(i * vocab + y);
  }
  const count = rows.length;
  const sum = tf.tidy(() => {
    if (count === 0) return tf.mul(tf.sum(logits), 0) as tf.Scalar; // keeps the graph, value 0
    const lse = logSumExpRows(tf.reshape(logits, [b * t, vocab])); // [B·T]
    const scoredLse = count === b * t ? lse : tf.gather(lse, tf.tensor1d(rows, 'int32')); // [K]
    const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flatIndex, 'int32')); // [K]
    return tf.sub(tf.sum(scoredLse), tf.sum(picked)) as tf.Scalar;
  });
  return { sum, count };
}

/** Mean cross-entropy over scored tokens (0 tokens → 0), for evaluation and single-batch steps. */
export function maskedCrossEntropyMean(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  const { sum, count } = maskedCrossEntropySum(logits, labels);
  const mean = tf.tidy(() => tf.div(sum, Math.max(1, count)) as tf.Scalar);
  sum.dispose();
  return mean;
}
