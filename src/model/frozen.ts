/**
 * Frozen base weights in bfloat16, off the wasm heap (`model.frozen_dtype: bfloat16`).
 *
 * A frozen weight is never updated, so it need not be a TF.js variable: it is kept as bfloat16 bits in
 * a JS typed array (2 bytes a weight, outside the 4 GiB wasm heap). On wasm with rlhf-kit's own
 * GEMM, a product reads the bits directly and upcasts each value as it packs it (no float32 copy of
 * the weight at all); elsewhere each use makes a transient float32 tensor of it, released right
 * after. Either way the product runs in float32, as PyTorch computes a bf16-stored weight upcast. A projection x·Wᵀ through such a weight is one custom op
 * whose gradient (dy·W, no dW: the weight is frozen) upcasts W again instead of keeping it, so the
 * backward pass pins no weight either. Embedding rows are gathered straight from the bits in JS.
 *
 * float32 → bfloat16 rounds to nearest, ties to even, as torch's `.to(torch.bfloat16)`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { isRecordingGradients } from '../engine/backprop.js';
import { matMulBf16Weight } from '../engine/blas/bf16-product.js';
import { canWriteInPlace, float32Storage } from '../engine/inplace.js';

/** float32 → bfloat16 bits, round to nearest even (torch's rounding); NaN stays a quiet NaN. */
export function toBf16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < out.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = ((b >>> 16) | 0x0040) & 0xffff;
    else out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** bfloat16 bits → float32 (exact: bf16 is float32's upper half). */
export function bf16BitsToFloat32(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return out;
}

export class FrozenWeight {
  readonly bits: Uint16Array;
  readonly shape: number[];

  /** A weight already in bfloat16 (e.g. read from a BF16 safetensors file): `bits` is kept, not copied. */
  constructor(bits: Uint16Array, shape: number[]) {
    this.bits = bits;
    this.shape = shape;
  }

  /** A float32 weight rounded to bfloat16. */
  static fromFloat32(values: Float32Array, shape: number[]): FrozenWeight {
    return new FrozenWeight(toBf16Bits(values), shape);
  }

  get size(): number {
    return this.bits.length;
  }

  /** A fresh float32 tensor of the weight (the caller disposes it). */
  materialize(): tf.Tensor {
    if (!canWriteInPlace()) return tf.tensor(bf16BitsToFloat32(this.bits), this.shape, 'float32');
    // Upcast straight into the new tensor's storage: no float32 copy in JS.
    const t = tf.zeros(this.shape, 'float32');
    const { array, base } = float32Storage(t, true);
    bf16BitsToFloat32(this.bits, array.subarray(base, base + this.bits.length));
    return t;
  }

  /**
   * x [..., in] · Wᵀ (`transpose`) or x [..., out] · W: straight from the bits with rlhf-kit's GEMM
   * where it runs (wasm), else through a transient float32 copy of W.
   */
  matMulWith(x: tf.Tensor, transpose: boolean): tf.Tensor {
    return matMulBf16Weight(x, this.bits, this.shape, transpose) ?? tf.tidy(() => tf.matMul(x, this.materialize(), false, transpose));
  }

  /** Rows `ids` of a [rows, width] weight, float32: [ids.length, width]. */
  gatherRows(ids: ArrayLike<number>): tf.Tensor2D {
    const width = this.shape[1]!;
    const out = new Float32Array(ids.length * width);
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r]!;
      if (!(id >= 0 && id < this.shape[0]!)) throw new Error(`FrozenWeight.gatherRows: id ${id} outside [0, ${this.shape[0]})`);
      bf16BitsToFloat32(this.bits.subarray(id * width, (id + 1) * width), out.subarray(r * width, (r + 1) * width));
    }
    return tf.tensor2d(out, [ids.length, width]);
  }
}

/** x [..., in] · Wᵀ → [..., out] for a frozen W [out, in]; the gradient reaches x only. */
export function frozenMatMulT(x: tf.Tensor, w: FrozenWeight): tf.Tensor {
  if (!isRecordingGradients()) return w.matMulWith(x, true);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const value = w.matMulWith(input, true);
    const gradFunc = (dy: tf.Tensor): tf.Tensor => w.matMulWith(dy, false); // [..., out] · [out, in]
    return { value, gradFunc };
  }) as (input: tf.Tensor) => tf.Tensor;
  return op(x);
}
