import * as tf from '@tensorflow/tfjs-core';

/** tfjs-backend-wasm 4.x: `getHeapMax()` of its emscripten build (65,536 pages of 64 KiB, less one). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/**
 * Whether `extraBytes` more of tensors can go on the tensor heap beside what is there now, keeping a
 * quarter of the cap for the work itself. Always true off wasm (no fixed cap there).
 */
export function heapHasRoomFor(extraBytes: number): boolean {
  if (tf.getBackend() !== 'wasm') return true;
  return tf.memory().numBytes + extraBytes <= 0.75 * WASM_HEAP_MAX_BYTES;
}
