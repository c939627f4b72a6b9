/**
 * Gradient checkpointing of one decoder layer (`train.gradient_checkpointing`), as torch's
 * `checkpoint(layer, h)` does: the forward keeps only the layer's input; the backward pass runs the
 * layer again, this time recording, and backpropagates through that recompute.
 *
 * Built on `tf.customGrad`, whose forward runs inside a kernel (nothing in it is recorded). The layer
 * reads its weights itself, so the variables whose gradients are wanted are passed as extra inputs:
 * the custom op then hands their gradients to the outer tape like any op's input gradients. Which
 * variables: those the enclosing gradient asks for (`gradientTargets`, known under the lean
 * backprop), else the trainable ones. Tensors the layer shares with others (RoPE tables, the
 * attention bias) are saved with the op, so they outlive the forward's tidy until the backward pass.
 * Randomness inside the layer (LoRA dropout) is replayed: the RNG state at the forward is restored
 * for the recompute, then put back, so the recompute draws the same masks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gradientTargets } from '../engine/backprop.js';
import type { Rng } from '../engine/rng.js';

/** The layer as a function of its input and its shared tensors (in the order given). */
export type LayerFn = (h: tf.Tensor, shared: tf.Tensor[]) => tf.Tensor;

/** The variables of `candidates` whose gradient the enclosing computation needs. */
export function wantedVariables(candidates: readonly tf.Variable[]): tf.Variable[] {
  const targets = gradientTargets();
  return candidates.filter((v) => (targets !== null ? targets.has(v) : v.trainable));
}

/**
 * `layer(h, shared)`, recomputed in the backward pass instead of keeping its activations.
 * Call only while gradients are recorded.
 */
export function checkpointedLayer(
  layer: LayerFn,
  h: tf.Tensor /* [B, T, H] */,
  shared: tf.Tensor[],
  variables: readonly tf.Variable[],
  rng: Rng | null,
): tf.Tensor /* [B, T, H] */ {
  const vars = wantedVariables(variables);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor;
    save([input, ...shared]);
    const rngAtForward = rng?.getState() ?? null;
    const value = layer(input, shared);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [hSaved, ...sharedSaved] = saved as [tf.Tensor, ...tf.Tensor[]];
      const rngNow = rng?.getState() ?? null;
      if (rng && rngAtForward) rng.setState(rngAtForward);
      try {
        const xs = [hSaved, ...vars];
        const { value: y, grads } = tf.engine().gradients(() => layer(hSaved, sharedSaved), xs, dy, true);
        y.dispose();
        // A variable the recompute did not reach (e.g. an adapter switched off) gets a zero gradient.
        return xs.map((x, i) => grads[i] ?? tf.zerosLike(x));
      } finally {
        if (rng && rngNow) rng.setState(rngNow);
      }
    };
    return { value, gradFunc };
  });
  return (op as (...xs: tf.Tensor[]) => tf.Tensor)(h, ...vars);
}
