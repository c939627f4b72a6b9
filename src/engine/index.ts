import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow';

/**
 * Choose and initialise the TF.js backend. (Skeleton: the engine issue adds `tensorflow`/`auto`
 * resolution, the wasm kernel patches, threads and `rlhf env` facts.)
 */
export async function initEngine(opts: { backend?: BackendName } = {}): Promise<string> {
  const want = opts.backend ?? 'auto';
  const name = want === 'auto' || want === 'tensorflow' ? 'wasm' : want;
  await tf.setBackend(name);
  await tf.ready();
  return tf.getBackend();
}
