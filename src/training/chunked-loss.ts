/**
 * Token-summed cross-entropy straight from the final hidden states and the LM head weight, in chunks
 * of rows, so a 150k vocabulary never holds [tokens, vocab]: only [chunk rows, vocab] lives at a time.
 *
 *   loss = Σ_scored rows  logsumexp(h_i · Wᵀ) − (h_i · Wᵀ)[y_i]
 *   ∂loss/∂h_i = (softmax(h_i · Wᵀ) − onehot(y_i)) · W        ∂loss/∂W = Σ_i (softmax − onehot)ᵀ · h_i
 *
 * The loss is linear in its upstream gradient (a scalar), so both gradients are computed chunk by
 * chunk during the forward pass, while each chunk's softmax is at hand, and only scaled in the
 * backward pass: no logits are kept and none recomputed. The weight's gradient is made only when
 * the enclosing gradient asks for it (full fine-tuning of a tied embedding or lm_head). Unscored rows
 * (label −100) are dropped before the product. Outside a gradient it only sums the loss.
 */
import * as tf from '@tensorflow/tfjs-core';
import { gradientTargets, isRecordingGradients } from '../engine/backprop.js';
import { wantedVariables } from '../model/checkpointing.js';
import { softmaxLastAxis } from '../model/layers.js';
import { IGNORE_INDEX } from './loss.js';

/** Logit elements per chunk: [chunk rows, vocab] stays under 32 MiB of float32. */
export const LOSS_CHUNK_ELEMENTS = 2 ** 23;

/** Rows per chunk for a vocabulary (at least 16). */
export function lossChunkRows(vocab: number): number {
  return Math.max(16, Math.floor(LOSS_CHUNK_ELEMENTS / vocab));
}

/**
 * Σ cross-entropy of `hidden` [B, T, H] (or [N, H]) through `weight` [V, H] against `labels`
 * (same leading shape, int32, −100 = ignore, already shifted). Returns the summed loss (a scalar,
 * differentiable with respect to hidden and weight) and the number of scored rows.
 */
export function chunkedCrossEntropySum(
  hidden: tf.Tensor,
  weight: tf.Tensor,
  labels: tf.Tensor,
  chunkRows = lossChunkRows(weight.shape[0]!),
): { sum: tf.Scalar; count: number } {
  const [vocab, width] = weight.shape as [number, number];
  if (hidden.shape[hidden.rank - 1] !== width || labels.size * width !== hidden.size) {
    throw new Error(`chunkedCrossEntropySum: hidden [${hidden.shape}], weight [${weight.shape}] and labels [${labels.shape}] do not agree`);
  }
  const labelValues = labels.dataSync();
  const rows: number[] = [];
  const targets: number[] = [];
  for (let i = 0; i < labelValues.length; i++) {
    const y = labelValues[i]!;
    if (y === IGNORE_INDEX) continue;
    if (y < 0 || y >= vocab || !Number.isInteger(y)) {
      throw new Error(`chunkedCrossEntropySum: label ${y} at flat position ${i} is outside [0, ${vocab})`);
    }
    rows.push(i);
    targets.push(y);
  }
  const count = rows.length;
  const sum = tf.tidy(() => {
    const flat = tf.reshape(hidden, [-1, width]); // [N, H]
    if (count === 0) return tf.mul(tf.sum(flat), 0) as tf.Scalar; // keeps the graph, value 0
    const scored = count === labelValues.length ? flat : tf.gather(flat, tf.tensor1d(rows, 'int32')); // [K, H]
    const recording = isRecordingGradients();
    // The weight's gradient only when asked for: a variable among the gradient's targets (or trainable),
    // a plain tensor only when it is itself a target (an upcast frozen weight never is).
    const weightWanted = recording &&
      (weight instanceof tf.Variable ? wantedVariables([weight]).length > 0 : gradientTargets()?.has(weight) === true);
    return lossOfRows(scored, weight, targets, Math.max(1, chunkRows), recording, weightWanted);
  });
  return { sum, count };
}

/** The custom op over the scored rows [K, H]: value, and (when recording) both gradients made on the way. */
function lossOfRows(scored: tf.Tensor, weight: tf.Tensor, targets: number[], chunkRows: number, recording: boolean, weightWanted: boolean): tf.Scalar {
  const [k, width] = scored.shape as [number, number];
  const vocab = weight.shape[0]!;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor;
    let total: tf.Tensor = tf.scalar(0);
    const dhChunks: tf.Tensor[] = [];
    let dw: tf.Tensor | null = null;
    for (let start = 0; start < k; start += chunkRows) {
      const n = Math.min(chunkRows, k - start);
      const ys = targets.slice(start, start + n);
      const [loss, dhc, dwNext] = tf.tidy((): tf.Tensor[] => {
        const hc = tf.slice(h, [start, 0], [n, width]); // [n, H]
        const logits = tf.matMul(hc, weight, false, true); // [n, V]
        const probs = softmaxLastAxis(logits); // [n, V]
        // logsumexp = max − log(max softmax), as `logSumExpRows` in loss.ts (no elementwise exp).
        const lse = tf.sub(tf.max(logits, -1), tf.log(tf.max(probs, -1))); // [n]
        const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(ys.map((y, i) => i * vocab + y), 'int32')); // [n]
        const loss = tf.add(total, tf.sub(tf.sum(lse), tf.sum(picked)));
        if (!recording) return [loss];
        const g = tf.sub(probs, tf.oneHot(tf.tensor1d(ys, 'int32'), vocab)); // [n, V]
        const dh = tf.matMul(g, weight); // [n, H]
        let dwNext: tf.Tensor | null = null;
        if (weightWanted) {
          const dwc = tf.matMul(g, hc, true, false); // [V, H]
          dwNext = dw === null ? dwc : tf.add(dw, dwc);
        }
        return dwNext === null ? [loss, dh] : [loss, dh, dwNext];
      });
      total.dispose();
      total = loss!;
      if (dhc) dhChunks.push(dhc);
      if (dwNext) {
        dw?.dispose();
        dw = dwNext;
      }
    }
    const dh = dhChunks.length === 0 ? null : dhChunks.length === 1 ? dhChunks[0]! : tf.concat(dhChunks);
    if (dhChunks.length > 1) tf.dispose(dhChunks);
    // Kept past the forward's scope: the backward pass scales and hands them on (or they are dropped below).
    if (dh) tf.keep(dh);
    if (dw) tf.keep(dw);
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      if (dh === null) throw new Error('chunkedCrossEntropySum: gradient asked for outside a recorded forward');
      const out = [tf.mul(dh, dy)];
      dh.dispose();
      if (weightWanted) {
        out.push(tf.mul(dw!, dy));
        dw!.dispose();
      }
      return out;
    };
    return { value: total as tf.Scalar, gradFunc };
  });
  return (weightWanted ? op(scored, weight) : (op as (h: tf.Tensor) => tf.Tensor)(scored)) as tf.Scalar;
}
