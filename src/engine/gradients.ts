import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

/**
 * Gradients tfjs-core 4.22 lacks or gets wrong, registered for every backend:
 *  - StridedSlice has none.
 *  - BatchMatMul ignores broadcasting: for `x[B,T,H] @ W[H,O]` it returns dW of shape [B,H,O]
 *    and backprop throws. Ours sums over broadcast batch axes, and for a shared right operand
 *    folds the batch into rows so dW is one 2-D product.
 */

/** ∂/∂a and ∂/∂b of op(a)·op(b) before any broadcast reduction (TensorFlow's MatMul gradient). */
function matMulGradParts(dy: Tensor, a: Tensor, b: Tensor, tA: boolean, tB: boolean): [() => Tensor, () => Tensor] {
  if (!tA && !tB) return [() => tf.matMul(dy, b, false, true), () => tf.matMul(a, dy, true, false)];
  if (!tA && tB) return [() => tf.matMul(dy, b, false, false), () => tf.matMul(dy, a, true, false)];
  if (tA && !tB) return [() => tf.matMul(b, dy, false, true), () => tf.matMul(a, dy, false, false)];
  return [() => tf.matMul(b, dy, true, true), () => tf.matMul(dy, a, true, true)];
}

/** Sum a batched gradient over the batch axes its input was broadcast along, to the input's shape. */
function reduceToShape(grad: Tensor, shape: number[]): Tensor {
  if (tf.util.arraysEqual(grad.shape, shape)) return grad;
  const batch = shape.slice(0, -2);
  const gradBatch = grad.shape.slice(0, -2);
  const axes = tf.backend_util.getReductionAxes(batch, gradBatch);
  const summed = axes.length > 0 ? tf.sum(grad, axes, true) : grad;
  return tf.reshape(summed, shape);
}

const batchMatMulGrad: GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const g = dy as Tensor;
    const [a, b] = saved as [Tensor, Tensor];
    const tA = Boolean(attrs['transposeA']);
    const tB = Boolean(attrs['transposeB']);
    const [da, db] = matMulGradParts(g, a, b, tA, tB);
    const aRows = a.shape.slice(0, -1).reduce((x, y) => x * y, 1); // batch·m, a not transposed
    const bShared = b.rank === 2 || b.shape.slice(0, -2).every((d) => d === 1);
    return {
      a: () => reduceToShape(da(), a.shape),
      b: () => {
        if (bShared && !tA && a.rank > 2) {
          // [batch·m, k]ᵀ · [batch·m, n]: the batch sum happens inside one product.
          const a2 = tf.reshape(a, [aRows, a.shape[a.rank - 1]!]);
          const g2 = tf.reshape(g, [aRows, g.shape[g.rank - 1]!]);
          const db2 = tB ? tf.matMul(g2, a2, true, false) : tf.matMul(a2, g2, true, false);
          return tf.reshape(db2, b.shape);
        }
        return reduceToShape(db(), b.shape);
      },
    };
  },
};

const stridedSliceGrad: GradConfig = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved as [Tensor];
    const attr = (k: string): number => Number(attrs[k] ?? 0);
    return {
      x: () => {
        // Slice the flat index of every x element with the same attrs: that gives, for each dy
        // entry, the x entry it came from; scatter-add dy back there.
        const index = tf.reshape(tf.range(0, x.size, 1, 'int32'), x.shape);
        const picked = tf.stridedSlice(
          index, attrs['begin'] as number[], attrs['end'] as number[], attrs['strides'] as number[],
          attr('beginMask'), attr('endMask'), attr('ellipsisMask'), attr('newAxisMask'), attr('shrinkAxisMask'),
        );
        // (cpu's StridedSlice returns the int32 indices as float32; they are exact below 2^24.)
        const ids = tf.cast(tf.reshape(picked, [-1]), 'int32') as tf.Tensor1D;
        const flat = tf.unsortedSegmentSum(tf.reshape(dy as Tensor, [-1]), ids, x.size);
        return tf.reshape(flat, x.shape);
      },
    };
  },
};

export const GRADIENT_PATCHES: readonly { config: GradConfig; reason: string }[] = [
  { config: batchMatMulGrad, reason: 'tfjs-core ignores batch broadcasting (x[B,T,H]·W[H,O] fails)' },
  { config: stridedSliceGrad, reason: 'missing in tfjs-core' },
];

/** Register the gradient patches (idempotent: registering again replaces). Returns kernel names. */
export function installGradientPatches(): string[] {
  for (const { config } of GRADIENT_PATCHES) tf.registerGradient(config);
  return GRADIENT_PATCHES.map((p) => p.config.kernelName);
}
