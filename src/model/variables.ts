import * as tf from '@tensorflow/tfjs-core';

/** A trainable variable holding `data`, without leaking the temporary tensor `tf.variable` copies from. */
export function newVariable(data: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}
