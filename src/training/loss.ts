import * as tf from '@tensorflow/tfjs-core';

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
 * Token-summed cross-entropy of `logits` [B, T, V] against `labels` [B, T] (int32, −100 = ignore,
 * already aligned with the logits — see {@link shiftLabels}). Returns the *sum* over scored tokens
 * (a scalar tensor, differentiable) and their count, so micro-batches can be combined exactly.
 * Stable: log-softmax, then the label's log-probability picked with a one-hot mask (whose
 * gradient, unlike gather's, every backend has).
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
  let count = 0;
  for (let i = 0; i < labelValues.length; i++) {
    const y = labelValues[i]!;
    if (y === IGNORE_INDEX) continue;
    if (y < 0 || y >= vocab || !Number.isInteger(y)) {
      throw new Error(`maskedCrossEntropySum: label ${y} at flat position ${i} is outside [0, ${vocab})`);
    }
    count++;
  }
  const sum = tf.tidy(() => {
    const keep = tf.notEqual(labels, IGNORE_INDEX); // [B, T] bool
    const intLabels = tf.cast(labels, 'int32');
    const safeLabels = tf.where(keep, intLabels, tf.zerosLike(intLabels)); // [B, T]
    const pick = tf.mul(tf.oneHot(safeLabels, vocab), tf.expandDims(tf.cast(keep, 'float32'), -1)); // [B, T, V]
    const logp = tf.logSoftmax(logits, -1); // [B, T, V]
    return tf.neg(tf.sum(tf.mul(logp, pick))) as tf.Scalar;
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
