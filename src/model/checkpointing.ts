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

/**
 * Every tensor inside `value` (plain objects and arrays walked, anything else kept as is), and a
 * function that rebuilds the same structure around replacement tensors in the same order: lets a
 * checkpointed layer save whatever tensors its context holds, whatever fields that context grows.
 */
export function tensorsWithin<T>(value: T): { tensors: tf.Tensor[]; rebuild: (replacements: readonly tf.Tensor[]) => T } {
  const tensors: tf.Tensor[] = [];
  const walk = (v: unknown): void => {
    if (v instanceof tf.Tensor) tensors.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (isPlainObject(v)) Object.values(v).forEach(walk);
  };
  walk(value);
  const rebuild = (replacements: readonly tf.Tensor[]): T => {
    let at = 0;
    const copy = (v: unknown): unknown => {
      if (v instanceof tf.Tensor) return replacements[at++];
      if (Array.isArray(v)) return v.map(copy);
      if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
      return v;
    };
    return copy(value) as T;
  };
  return { tensors, rebuild };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
