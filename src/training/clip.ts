import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient clipping by global L2 norm, as `torch.nn.utils.clip_grad_norm_`:
 *   total = ‖(‖g₁‖, ‖g₂‖, …)‖,  coef = min(1, maxNorm / (total + 1e-6)),  g ← coef·g.
 */

/** Global L2 norm of all tensors (the norm of the per-tensor norms). NaN/Inf propagate. */
export function globalNorm(tensors: Iterable<tf.Tensor>): number {
  const list = [...tensors];
  if (list.length === 0) return 0;
  return tf.tidy(() => {
    const norms = list.map((g) => tf.sqrt(tf.sum(tf.square(g))));
    return tf.sqrt(tf.sum(tf.square(tf.stack(norms)))).dataSync()[0]!;
  });
}

/** The factor torch multiplies gradients by; 1 when clipping is off (`maxNorm` ≤ 0 or ∞). */
export function clipCoefficient(totalNorm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || maxNorm === Infinity) return 1;
  return Math.min(1, maxNorm / (totalNorm + 1e-6));
}

/**
 * Clip the gradients in `grads` in place (each scaled tensor replaces and disposes the old one) and
 * return the pre-clip global norm. A non-finite norm leaves the gradients as they are: the caller's
 * NaN guard skips that update anyway.
 */
export function clipGradNormInPlace(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  const norm = globalNorm(grads.values());
  if (!Number.isFinite(norm)) return norm;
  const coef = clipCoefficient(norm, maxNorm);
  if (coef < 1) {
    for (const [name, g] of grads) {
      grads.set(name, tf.keep(tf.tidy(() => tf.mul(g, coef))));
      g.dispose();
    }
  }
  return norm;
}
