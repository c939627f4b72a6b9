import type * as tf from '@tensorflow/tfjs-core';

/**
 * Something that modifies one linear projection of the model (LoRA). `LlamaModel.linear` computes the
 * base output `x · Wᵀ` and, when an adapter is registered for the module and adapters are enabled,
 * returns `adapter.apply(x, baseOut)` instead.
 */
export interface LinearAdapter {
  apply(x: tf.Tensor /* [..., in] */, baseOut: tf.Tensor /* [..., out] */): tf.Tensor /* [..., out] */;
  /**
   * What `apply` adds, as a weight delta [out, in] outside training (so x·(W + Δ)ᵀ = apply(x, x·Wᵀ)),
   * or null when it adds nothing. Lets inference fold the adapter into the base weight
   * (`LlamaModel.withInferenceWeights`); an adapter without it is applied as usual.
   */
  inferenceDelta?(): tf.Tensor2D | null;
  /** The adapter's own variables (gradient checkpointing hands them their gradients). */
  variables?(): tf.Variable[];
}
