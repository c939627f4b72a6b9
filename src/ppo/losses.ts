/**
 * PPO losses on tensors (differentiable): the clipped surrogate, the clipped value loss and the
 * entropy of the policy. All inputs are [batch, T] over response positions with a 0/1 float mask.
 * Call inside `tf.tidy` / `tf.variableGrads`; nothing here disposes its inputs.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Σ x·mask / Σ mask as a scalar tensor (differentiable in x). With `denominator` (the scored-token
 * count of a whole accumulated minibatch), Σ x·mask / denominator instead: a micro-batch's share of
 * the minibatch's token mean, so the shares of its micro-batches add up to that mean exactly.
 */
export function maskedMeanTensor(x: tf.Tensor, mask: tf.Tensor, denominator?: number): tf.Scalar {
  const count = denominator === undefined ? tf.maximum(tf.sum(mask), 1) : Math.max(denominator, 1);
  return tf.div(tf.sum(tf.mul(x, mask)), count) as tf.Scalar;
}

export interface PolicyLossResult {
  /** mean over the mask of max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)). */
  loss: tf.Scalar;
  /** Fraction of tokens where the clipped term was the larger (i.e. the one used). */
  clipfrac: tf.Scalar;
  /** ½·mean((log ρ)²) over the mask: the approx-KL TRL reports as `policy/approxkl_avg`. */
  approxKl: tf.Scalar;
  /** mean ρ over the mask, for the ratio-threshold skip. */
  ratioMean: tf.Scalar;
}

/**
 * Clipped surrogate (Schulman et al. 2017) on ρ = exp(log π_new − log π_old):
 *   L = mean_mask max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))
 */
export function policyLoss(a: {
  newLogprobs: tf.Tensor; // [batch, T]
  oldLogprobs: tf.Tensor; // [batch, T]
  advantages: tf.Tensor; // [batch, T]
  mask: tf.Tensor; // [batch, T]
  clipRange: number;
  /** Token count the means divide by (see {@link maskedMeanTensor}); default Σ mask. */
  denominator?: number;
}): PolicyLossResult {
  const mean = (x: tf.Tensor): tf.Scalar => maskedMeanTensor(x, a.mask, a.denominator);
  const logRatio = tf.mul(tf.sub(a.newLogprobs, a.oldLogprobs), a.mask); // 0 at padding
  const ratio = tf.exp(logRatio);
  const unclipped = tf.mul(tf.neg(a.advantages), ratio);
  const clipped = tf.mul(tf.neg(a.advantages), tf.clipByValue(ratio, 1 - a.clipRange, 1 + a.clipRange));
  return {
    loss: mean(tf.maximum(unclipped, clipped)),
    clipfrac: mean(tf.cast(tf.greater(clipped, unclipped), 'float32')),
    approxKl: tf.mul(0.5, mean(tf.square(logRatio))) as tf.Scalar,
    ratioMean: mean(ratio),
  };
}

export interface ValueLossResult {
  /** ½·mean over the mask of max((V − R)², (clip(V, V_old ± ε_v) − R)²). */
  loss: tf.Scalar;
  /** Fraction of tokens where the clipped error was the larger. */
  clipfrac: tf.Scalar;
}

/** Value loss with value clipping, as TRL/PPO2: the new value may move at most ε_v from the rollout's. */
export function valueLoss(a: {
  values: tf.Tensor; // [batch, T] new predictions
  oldValues: tf.Tensor; // [batch, T] predictions recorded at rollout
  returns: tf.Tensor; // [batch, T]
  mask: tf.Tensor; // [batch, T]
  clipRangeValue: number;
  /** Token count the means divide by (see {@link maskedMeanTensor}); default Σ mask. */
  denominator?: number;
}): ValueLossResult {
  // clip(V, V_old − ε_v, V_old + ε_v) with tensor bounds
  const clippedValues = tf.minimum(
    tf.maximum(a.values, tf.sub(a.oldValues, a.clipRangeValue)),
    tf.add(a.oldValues, a.clipRangeValue),
  );
  const unclippedErr = tf.square(tf.sub(a.values, a.returns));
  const clippedErr = tf.square(tf.sub(clippedValues, a.returns));
  return {
    loss: tf.mul(0.5, maskedMeanTensor(tf.maximum(unclippedErr, clippedErr), a.mask, a.denominator)) as tf.Scalar,
    clipfrac: maskedMeanTensor(tf.cast(tf.greater(clippedErr, unclippedErr), 'float32'), a.mask, a.denominator),
  };
}

/** Entropy of softmax(logits) per position: logsumexp(z) − Σ softmax(z)·z. [..., V] → [...] */
export function entropyFromLogits(logits: tf.Tensor): tf.Tensor {
  const lse = tf.logSumExp(logits, -1);
  const probs = tf.softmax(logits, -1);
  return tf.sub(lse, tf.sum(tf.mul(probs, logits), -1));
}
