import * as tf from '@tensorflow/tfjs-core';
import { float32Storage } from '../inplace.js';
import { activeBlas } from './index.js';

/**
 * Products x [..., k] · op(W) for a frozen weight W [rows, cols] held in JS memory, off the wasm heap
 * (`../../model/frozen.ts`), computed by a native GEMM that reads W where it lies: no copy of W is
 * made, on the heap or anywhere. op(W) = Wᵀ (k = cols, out [..., rows]) when `transposeW`, else W
 * (k = rows, out [..., cols]). x and the output are passed by heap address. Each returns null where
 * its path is not available — another backend, no GEMM, no address of a buffer — and the caller
 * then makes a transient tensor of W.
 */

/** W as bfloat16 bits, upcast as the GEMM packs it (only rlhf-kit's own GEMM has that entry). */
export function matMulBf16Weight(x: tf.Tensor, bits: Uint16Array, wShape: readonly number[], transposeW: boolean): tf.Tensor | null {
  const lib = activeBlas();
  const gemm = lib?.sgemmBf16B;
  if (lib === null || gemm == null) return null;
  const { k, n } = productSides(x, wShape, transposeW, 'matMulBf16Weight');
  return productOnHeap(x, n, (m, a, c) => gemm(false, transposeW, m, n, k, a, k, bits, wShape[1]!, c, n));
}

/**
 * W as float32 values in any ArrayBuffer (a JS array, or a view of a mapped safetensors file), by
 * its native address: the same `sgemm` call the wasm BatchMatMul kernel makes for x·op(W) with W a
 * tensor, so the result is the same to the bit.
 */
export function matMulFloat32Weight(x: tf.Tensor, values: Float32Array, wShape: readonly number[], transposeW: boolean): tf.Tensor | null {
  const lib = activeBlas();
  const addressOf = lib?.addressOf;
  if (lib === null || addressOf == null) return null;
  const { k, n } = productSides(x, wShape, transposeW, 'matMulFloat32Weight');
  return productOnHeap(x, n, (m, a, c) => lib.sgemm(false, transposeW, m, n, k, a, k, addressOf(values.buffer as ArrayBuffer) + values.byteOffset, wShape[1]!, c, n));
}

/**
 * x [..., k] · [W₁; W₂; …]ᵀ → [..., Σ outᵢ] for float32 weights Wᵢ [outᵢ, k]: each product written
 * into its own columns of one output (the GEMM's row stride is the whole width), so a q|k|v or
 * gate|up projection is one output without a fused copy of the weights or a concat.
 */
export function matMulFloat32WeightsT(x: tf.Tensor, weights: readonly { values: Float32Array; shape: readonly number[] }[]): tf.Tensor | null {
  const lib = activeBlas();
  const addressOf = lib?.addressOf;
  if (lib === null || addressOf == null) return null;
  const k = x.shape[x.shape.length - 1]!;
  for (const w of weights) productSides(x, w.shape, true, 'matMulFloat32WeightsT');
  const width = weights.reduce((sum, w) => sum + w.shape[0]!, 0);
  return productOnHeap(x, width, (m, a, c) => {
    let column = 0;
    for (const { values, shape } of weights) {
      const n = shape[0]!;
      lib.sgemm(false, true, m, n, k, a, k, addressOf(values.buffer as ArrayBuffer) + values.byteOffset, k, c + 4 * column, width);
      column += n;
    }
  });
}

/** k and n of x [..., k] · op(W) for W [rows, cols]; throws when x's last axis is not k. */
function productSides(x: tf.Tensor, wShape: readonly number[], transposeW: boolean, what: string): { k: number; n: number } {
  const [rows, cols] = wShape as [number, number];
  const k = transposeW ? cols : rows;
  const inner = x.shape[x.shape.length - 1];
  if (inner !== k) throw new Error(`${what}: x [${x.shape}] cannot multiply ${transposeW ? 'Wᵀ of ' : ''}W [${rows}, ${cols}]`);
  return { k, n: transposeW ? rows : cols };
}

/** A fresh output [..., n] for x [..., k], and x's and its heap addresses for one `gemm(m, a, c)`; null off the path. */
function productOnHeap(x: tf.Tensor, n: number, gemm: (m: number, a: number, c: number) => void): tf.Tensor | null {
  const lib = activeBlas();
  if (lib === null || lib.addressOf === null || tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return null;
  const k = x.shape[x.shape.length - 1]!;
  const m = k === 0 ? 0 : x.size / k;
  const out = tf.zeros([...x.shape.slice(0, -1), n], 'float32'); // a fresh buffer this function owns
  if (m === 0 || n === 0) return out;
  // Read after the allocation: growing the heap replaces its buffer (and so every address).
  const xs = float32Storage(x);
  const os = float32Storage(out, true);
  const heap = lib.addressOf(os.array.buffer as ArrayBuffer);
  gemm(m, heap + 4 * xs.base, heap + 4 * os.base);
  return out;
}
