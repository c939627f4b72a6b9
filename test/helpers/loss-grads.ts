import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../../src/model/llama.js';
import { maskedCrossEntropySum, shiftLabels } from '../../src/training/loss.js';

/**
 * Summed token cross-entropy of one batch and its gradients for `vars` (values copied out), the peak
 * tensor bytes of computing them, and a check that no tensor was left behind.
 */
export async function lossGrads(
  model: LlamaModel,
  vars: tf.Variable[],
  ids: number[][],
  mask: number[][],
): Promise<{ loss: number; grads: Float32Array[]; peak: number }> {
  const idsT = tf.tensor2d(ids, undefined, 'int32');
  const maskT = tf.tensor2d(mask, undefined, 'int32');
  const labels = tf.tensor2d(shiftLabels(ids), undefined, 'int32');
  let loss = 0;
  let grads: Float32Array[] = [];
  const before = tf.memory().numTensors;
  const { peakBytes } = await tf.profile(() => {
    const r = tf.variableGrads(() => maskedCrossEntropySum(model.forward({ inputIds: idsT, attentionMask: maskT, training: true }).logits, labels).sum, vars);
    loss = r.value.dataSync()[0]!;
    grads = vars.map((v) => r.grads[v.name]!.dataSync() as Float32Array);
    tf.dispose([r.value, ...Object.values(r.grads)]);
  });
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([idsT, maskT, labels]);
  return { loss, grads, peak: peakBytes };
}
