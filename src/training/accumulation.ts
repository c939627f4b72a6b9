import * as tf from '@tensorflow/tfjs-core';

/**
 * Gradient accumulation that is exactly the larger batch. The large batch's loss is
 * Σ(token losses) / N, N = scored tokens in the *whole* accumulated batch; so each micro-batch
 * contributes (its token-loss sum) / N — not its own mean — and the gradients simply add up.
 * Averaging per-micro-batch means instead would weight tokens unevenly when counts differ.
 */

/** A running sum of gradients keyed by parameter name; owns its tensors. */
export class GradientAccumulator {
  /** The summed gradients; {@link clipGradNormInPlace} may replace entries in place. */
  readonly grads = new Map<string, tf.Tensor>();
  microSteps = 0;

  /** Add one micro-batch's gradients (not disposed: the caller still owns `grads`). */
  add(grads: Map<string, tf.Tensor>): void {
    for (const [name, g] of grads) {
      const prev = this.grads.get(name);
      this.grads.set(name, tf.keep(prev ? tf.tidy(() => tf.add(prev, g)) : tf.clone(g)));
      prev?.dispose();
    }
    this.microSteps++;
  }

  /** Dispose the sums and start over. */
  reset(): void {
    for (const g of this.grads.values()) g.dispose();
    this.grads.clear();
    this.microSteps = 0;
  }
}

/**
 * Loss and gradients of one micro-batch scaled for the accumulated batch:
 * value = lossSum / totalTargets. `lossSum` must build its graph from `variables` (forward inside).
 * Gradients are keyed like `variables`; a variable the loss does not use gets none.
 */
export function microBatchGrads(
  variables: Map<string, tf.Variable>,
  lossSum: () => tf.Scalar,
  totalTargets: number,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const names = [...variables.keys()];
  const vars = names.map((n) => variables.get(n)!);
  const { value, grads } = tf.variableGrads(() => tf.div(lossSum(), Math.max(1, totalTargets)) as tf.Scalar, vars);
  const loss = value.dataSync()[0]!;
  value.dispose();
  const out = new Map<string, tf.Tensor>();
  names.forEach((name, i) => {
    const g = grads[vars[i]!.name];
    if (g) out.set(name, g);
  });
  return { loss, grads: out };
}

/**
 * Run every micro-batch of one optimizer step and return the summed loss and gradients, exactly
 * those of the concatenated batch. `lossSumOf(mb)` returns the micro-batch's token-summed loss
 * (e.g. {@link maskedCrossEntropySum}'s `sum`); `totalTargets` counts scored tokens across all
 * micro-batches. The returned accumulator owns the gradients: `reset()` it after the update.
 */
export function accumulateGradients<T>(
  variables: Map<string, tf.Variable>,
  microBatches: readonly T[],
  lossSumOf: (mb: T) => tf.Scalar,
  totalTargets: number,
  accumulator: GradientAccumulator = new GradientAccumulator(),
): { loss: number; accumulator: GradientAccumulator } {
  let loss = 0;
  for (const mb of microBatches) {
    const part = microBatchGrads(variables, () => lossSumOf(mb), totalTargets);
    accumulator.add(part.grads);
    disposeGrads(part.grads);
    loss += part.loss;
  }
  return { loss, accumulator };
}

export function disposeGrads(grads: Map<string, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
}
