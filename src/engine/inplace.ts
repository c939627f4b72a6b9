import * as tf from '@tensorflow/tfjs-core';
import { asWasmBackend } from './wasm/heap.js';

/**
 * Writing into a tensor's storage in place — outside TF.js's immutable-tensor model, so only for a
 * buffer the caller made itself with `tf.zeros` (fresh storage, never reshaped, cloned or sliced
 * into another tensor) and owns outright, like the preallocated KV cache (`../model/kvcache.ts`).
 * Supported on the backends whose storage is reachable synchronously: wasm (the heap) and cpu
 * (a JS typed array). Elsewhere `canWriteInPlace()` is false and callers take an immutable path.
 */
export function canWriteInPlace(): boolean {
  const name = tf.getBackend();
  return name === 'wasm' || name === 'cpu';
}

interface CpuBackend {
  data: { get(dataId: object): { values?: unknown } | undefined };
  readSync(dataId: object): unknown;
}

/**
 * Copy `count` positions of axis 2 from `src` [B, H, S₁, D] (from position `srcAt`) into `dst`
 * [B, H, S₂, D] (at position `dstAt`), for every (b, h). Both float32, same B, H and D.
 */
export function copyAxis2InPlace(dst: tf.Tensor4D, dstAt: number, src: tf.Tensor4D, srcAt: number, count: number): void {
  const [batch, heads, dstLen, d] = dst.shape;
  const srcLen = src.shape[2];
  if (src.shape[0] !== batch || src.shape[1] !== heads || src.shape[3] !== d || dst.dtype !== 'float32' || src.dtype !== 'float32') {
    throw new Error(`copyAxis2InPlace: shapes [${src.shape}] ${src.dtype} → [${dst.shape}] ${dst.dtype} do not match`);
  }
  if (dstAt < 0 || srcAt < 0 || dstAt + count > dstLen || srcAt + count > srcLen) {
    throw new Error(`copyAxis2InPlace: positions ${srcAt}+${count} of ${srcLen} → ${dstAt} of ${dstLen} out of range`);
  }
  if (count === 0) return;
  const { dstArr, dstBase, srcArr, srcBase } = storage(dst, src);
  const n = count * d;
  for (let bh = 0; bh < batch * heads; bh++) {
    const from = srcBase + (bh * srcLen + srcAt) * d;
    const to = dstBase + (bh * dstLen + dstAt) * d;
    if (dstArr === srcArr) dstArr.copyWithin(to, from, from + n);
    else dstArr.set(srcArr.subarray(from, from + n), to);
  }
}

/** Float32 views of both tensors' storage, with each tensor's first element index in its view. */
function storage(dst: tf.Tensor, src: tf.Tensor): { dstArr: Float32Array; dstBase: number; srcArr: Float32Array; srcBase: number } {
  const d = float32Storage(dst, true);
  const s = float32Storage(src, false);
  return { dstArr: d.array, dstBase: d.base, srcArr: s.array, srcBase: s.base };
}

/**
 * A float32 tensor's storage without a copy: a view of the wasm heap (valid until the next
 * allocation may grow memory) or the cpu backend's own array, and the index of its first element.
 * Read-only unless the tensor is an owned buffer (see the top of this file).
 */
export function float32Storage(t: tf.Tensor, writable = false): { array: Float32Array; base: number } {
  if (t.dtype !== 'float32') throw new Error(`float32Storage: ${t.dtype} tensor`);
  const name = tf.getBackend();
  if (name === 'wasm') {
    const backend = asWasmBackend(tf.backend());
    const heap = new Float32Array(backend.wasm.HEAPU8.buffer); // fresh view: memory growth swaps the buffer
    return { array: heap, base: backend.dataIdMap.get(t.dataId).memoryOffset / 4 };
  }
  if (name === 'cpu') {
    const backend = tf.backend() as unknown as CpuBackend;
    const array = writable ? backend.data.get(t.dataId)?.values : backend.readSync(t.dataId);
    if (!(array instanceof Float32Array)) throw new Error('float32Storage: cpu tensor storage is not a Float32Array');
    return { array, base: 0 };
  }
  throw new Error(`float32Storage: not supported on the ${name} backend (check canWriteInPlace() first)`);
}
