import type * as tf from '@tensorflow/tfjs-core';

/**
 * Something that modifies one linear projection of the model (LoRA). `LlamaModel.linear` computes the
 * base output `x · Wᵀ` and, when an adapter is registered for the module and adapters are enabled,
 * returns `adapter.apply(x, baseOut)` instead.
 */
export interface LinearAdapter {
  apply(x: tf.Tensor /* [..., in] */, baseOut: tf.Tensor /* [..., out] */): tf.Tensor /* [..., out] */;
}
