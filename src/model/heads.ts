/**
 * The scalar head of reward and value models: `score.weight` [1, hidden], no bias, exactly as
 * Hugging Face's LlamaForSequenceClassification with num_labels = 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../engine/rng.js';
import { newVariable } from './variables.js';

export class ScalarHead {
  constructor(readonly weight: tf.Variable /* [1, hidden] */) {}

  /** A fresh head, N(0, std²) like HF's init. */
  static init(hidden: number, rng: Rng, std = 0.02): ScalarHead {
    const data = rng.fillNormal(new Float32Array(hidden), std);
    return new ScalarHead(newVariable(data, [1, hidden]));
  }

  /** One score per token: [B, T, H] → [B, T]. */
  scoreAllTokens(hidden: tf.Tensor /* [B, T, H] */): tf.Tensor2D {
    return tf.tidy(() => {
      const [b, t, h] = hidden.shape as [number, number, number];
      const flat = tf.reshape(hidden, [b * t, h]);
      return tf.reshape(tf.matMul(flat, this.weight, false, true), [b, t]) as tf.Tensor2D;
    });
  }

  /**
   * The score at each row's last real token: [B, T, H] + mask [B, T] → [B]. "Last" is the rightmost
   * position with mask 1, so it is right under left padding, right padding, or none.
   */
  scoreAtLastToken(hidden: tf.Tensor /* [B, T, H] */, attentionMask: tf.Tensor /* [B, T] */): tf.Tensor1D {
    return tf.tidy(() => {
      const t = hidden.shape[1]!;
      const last = lastTokenIndex(attentionMask, t); // [B]
      const pick = tf.oneHot(last, t); // [B, T]
      return tf.sum(tf.mul(this.scoreAllTokens(hidden), pick), 1) as tf.Tensor1D;
    });
  }
}

/** Index of the rightmost 1 in each row of a [B, T] mask (0 for an all-zero row). */
export function lastTokenIndex(attentionMask: tf.Tensor, t: number): tf.Tensor1D {
  return tf.tidy(() => {
    const mask = tf.cast(tf.slice(attentionMask, [0, attentionMask.shape[1]! - t], [-1, t]), 'float32');
    const positions = tf.add(tf.range(0, t, 1, 'float32'), 1); // 1..T so position 0 still beats an empty row
    return tf.cast(tf.argMax(tf.mul(mask, positions), 1), 'int32') as tf.Tensor1D;
  });
}
