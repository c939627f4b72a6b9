import * as tf from '@tensorflow/tfjs-core';
import { canWriteInPlace, copyAxis2InPlace } from '../engine/inplace.js';

/**
 * Keys and values of one decoder layer, after RoPE: [batch, kvHeads, positions, headDim]. In a
 * preallocated cache `positions` is the capacity, of which the first `length` are valid.
 */
export interface LayerKV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/**
 * Buffers of a preallocated cache, shared by the caches that extend one another. `written` is how
 * many positions have been written: a cache may append in place only when it is the latest one
 * (its length equals `written`); an older cache that is extended again (a branch) gets a copy.
 */
export interface KVStore {
  layers: LayerKV[];
  capacity: number;
  written: number;
  refs: number;
}

/**
 * Keys/values of every layer for the tokens seen so far. Immutable from the outside:
 * `LlamaModel.forward` returns a new cache, and the caller disposes the old one when done with it.
 *
 * Two kinds:
 * - `KVCache.empty()` holds exactly `length` positions; each forward concatenates the new ones (a
 *   copy of the whole cache per step).
 * - `KVCache.preallocated(capacity)` (generation on wasm/cpu) holds buffers with room for `capacity`
 *   positions that successive caches share, and a forward writes its new positions into them in
 *   place. Attention then reads the whole buffer: positions at or past the query's own are masked
 *   by the causal rule, and unwritten ones are zeros, so the result is the same as with the exact
 *   cache. Past the capacity (or when an older cache is extended again) the buffers are copied.
 */
export class KVCache {
  constructor(
    readonly layers: LayerKV[],
    /** Number of positions held (the `pastLen` of the next forward). */
    readonly length: number,
    private readonly store: KVStore | null = null,
    /** Capacity asked for a preallocated cache that has no buffers yet; null for an exact cache. */
    private readonly requested: number | null = null,
  ) {
    if (store) store.refs++;
  }

  static empty(): KVCache {
    return new KVCache([], 0);
  }

  /**
   * An empty cache that appends in place, with room for `capacity` positions (it grows past that by
   * copying). Where the backend cannot write in place (tensorflow), an exact cache instead.
   */
  static preallocated(capacity: number): KVCache {
    if (!canWriteInPlace()) return KVCache.empty();
    return new KVCache([], 0, null, Math.max(1, Math.ceil(capacity)));
  }

  /** Whether forwards write into shared buffers (layers are [B, nkv, capacity, hd]). */
  get isPreallocated(): boolean {
    return this.store !== null || this.requested !== null;
  }

  dispose(): void {
    if (this.store) {
      this.store.refs--;
      if (this.store.refs === 0) disposeLayers(this.store.layers);
      return;
    }
    disposeLayers(this.layers);
  }

  /**
   * For a preallocated cache: buffers that can take positions [length, length + count) in place —
   * this cache's own when it is the latest and has room, else new ones (capacity doubled as needed)
   * holding a copy of its `length` positions. `shape` is [batch, kvHeads, headDim] for new buffers.
   * The caller writes the new positions and wraps the result with `extendedBy`.
   */
  appendBuffers(count: number, numLayers: number, shape: [number, number, number]): KVStore {
    if (!this.isPreallocated) throw new Error('KVCache.appendBuffers: not a preallocated cache');
    const [batch, kvHeads, headDim] = shape;
    const needed = this.length + count;
    const store = this.store;
    if (store && store.written === this.length && store.capacity >= needed) {
      const k = store.layers[0]?.k;
      if (k && (k.shape[0] !== batch || k.shape[1] !== kvHeads || k.shape[3] !== headDim)) {
        throw new Error(`KVCache: cache is [${k.shape}], the forward needs [${batch}, ${kvHeads}, *, ${headDim}]`);
      }
      return store;
    }
    let capacity = Math.max(store?.capacity ?? this.requested ?? 0, 1);
    while (capacity < needed) capacity *= 2;
    const layers: LayerKV[] = [];
    for (let i = 0; i < numLayers; i++) {
      const k = tf.zeros([batch, kvHeads, capacity, headDim]) as tf.Tensor4D;
      const v = tf.zeros([batch, kvHeads, capacity, headDim]) as tf.Tensor4D;
      if (store && this.length > 0) {
        copyAxis2InPlace(k, 0, store.layers[i]!.k, 0, this.length);
        copyAxis2InPlace(v, 0, store.layers[i]!.v, 0, this.length);
      }
      layers.push({ k, v });
    }
    return { layers, capacity, written: this.length, refs: 0 };
  }

  /** The cache after a forward appended `count` positions to `store` (from `appendBuffers`). */
  static extendedBy(previous: KVCache, store: KVStore, count: number): KVCache {
    store.written = previous.length + count;
    return new KVCache(store.layers, previous.length + count, store);
  }

  /** Release buffers from `appendBuffers` that no cache took (the forward failed). */
  static release(store: KVStore): void {
    if (store.refs === 0) disposeLayers(store.layers);
  }

  /** Keep only the given batch rows (e.g. to drop finished sequences). Returns a new cache of the same kind. */
  selectRows(rows: number[]): KVCache {
    const idx = tf.tensor1d(rows, 'int32');
    const layers = this.layers.map((l) => ({
      k: tf.gather(l.k, idx, 0) as tf.Tensor4D,
      v: tf.gather(l.v, idx, 0) as tf.Tensor4D,
    }));
    idx.dispose();
    if (!this.isPreallocated) return new KVCache(layers, this.length);
    if (this.store === null) {
      tf.dispose(layers.flatMap((l) => [l.k, l.v]));
      return KVCache.preallocated(this.requested!);
    }
    // gather wrote fresh storage, so the copies can take appends in place.
    return new KVCache(layers, this.length, { layers, capacity: this.store.capacity, written: this.length, refs: 0 });
  }
}

function disposeLayers(layers: LayerKV[]): void {
  for (const l of layers) {
    l.k.dispose();
    l.v.dispose();
  }
}
