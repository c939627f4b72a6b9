import * as tf from '@tensorflow/tfjs-core';

/** Keys and values of one decoder layer, after RoPE: [batch, kvHeads, pastLen, headDim]. */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/**
 * Keys/values of every layer for the tokens seen so far. Immutable: `LlamaModel.forward` returns a
 * new cache holding the concatenation, and the caller disposes the old one when done with it.
 *
 * Why concat rather than a preallocated buffer: TF.js tensors cannot be written in place, and the
 * attention step reads the whole cache anyway (B·nh·S·hd multiply-adds), so copying it
 * (B·nkv·S·hd floats) costs at most the same order as using it — measured in bench/model.ts.
 */
export class KVCache {
  constructor(
    readonly layers: LayerKV[],
    /** Number of positions held (the `pastLen` of the next forward). */
    readonly length: number,
  ) {}

  static empty(): KVCache {
    return new KVCache([], 0);
  }

  dispose(): void {
    for (const l of this.layers) {
      l.k.dispose();
      l.v.dispose();
    }
  }

  /** Keep only the given batch rows (e.g. to drop finished sequences). Returns a new cache. */
  selectRows(rows: number[]): KVCache {
    const idx = tf.tensor1d(rows, 'int32');
    const layers = this.layers.map((l) => ({
      k: tf.gather(l.k, idx, 0) as tf.Tensor4D,
      v: tf.gather(l.v, idx, 0) as tf.Tensor4D,
    }));
    idx.dispose();
    return new KVCache(layers, this.length);
  }
}
