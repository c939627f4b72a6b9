import * as tf from '@tensorflow/tfjs-core';
import { float32Storage } from '../inplace.js';
import { activeBlas } from './index.js';

/**
 * x [..., k] · op(W) for a weight W [rows, cols] held as bfloat16 bits in JS memory (a frozen
 * weight off the wasm heap), computed by rlhf-kit's GEMM straight from the bits: no float32 copy of
 * W is made, on the heap or anywhere. op(W) = Wᵀ (k = cols, out [..., rows]) when `transposeW`,
 * else W (k = rows, out [..., cols]). Null where this path is not available — another backend, or
 * a library without a bfloat16 entry — and the caller then upcasts W into a tensor.
 */
export function matMulBf16Weight(x: tf.Tensor, bits: Uint16Array, wShape: readonly number[], transposeW: boolean): tf.Tensor | null {
  const lib = activeBlas();
  if (lib === null || lib.sgemmBf16B === null || lib.addressOf === null || tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return null;
  const [rows, cols] = wShape as [number, number];
  const k = transposeW ? cols : rows;
  const n = transposeW ? rows : cols;
  const inner = x.shape[x.shape.length - 1];
  if (inner !== k) throw new Error(`matMulBf16Weight: x [${x.shape}] cannot multiply ${transposeW ? 'Wᵀ of ' : ''}W [${rows}, ${cols}]`);
  const m = x.size / k;
  const out = tf.zeros([...x.shape.slice(0, -1), n], 'float32'); // a fresh buffer this function owns
  if (m === 0) return out;
  // Read after the allocation: growing the heap replaces its buffer (and so every address).
  const xs = float32Storage(x);
  const os = float32Storage(out, true);
  const heap = lib.addressOf(os.array.buffer as ArrayBuffer);
  lib.sgemmBf16B(false, transposeW, m, n, k, heap + 4 * xs.base, k, bits, cols, heap + 4 * os.base, n);
  return out;
}
