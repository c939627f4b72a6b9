/**
 * Frozen weights off the wasm heap: in bfloat16 (`model.frozen_dtype: bfloat16`, `FrozenWeight`), or
 * in float32 (`FrozenFloat32Weight`: inference-only loads, values mapped from the safetensors file).
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
import { matMulBf16Weight, matMulFloat32Weight, matMulFloat32WeightsT } from '../engine/blas/frozen-product.js';
import { canWriteInPlace, float32Storage } from '../engine/inplace.js';

/** What the model needs of a frozen weight, whatever holds its values. */
export interface Frozen {
  readonly dtype: 'bfloat16' | 'float32';
  readonly shape: number[];
  readonly size: number;
  /** A fresh float32 tensor of the weight (the caller disposes it). */
  materialize(): tf.Tensor;
  /** x [..., in] · Wᵀ (`transpose`) or x [..., out] · W, in float32. */
  matMulWith(x: tf.Tensor, transpose: boolean): tf.Tensor;
  /** Rows `ids` of a [rows, width] weight, float32: [ids.length, width]. */
  gatherRows(ids: ArrayLike<number>): tf.Tensor2D;
  /** Let go of the values (the model is disposed): any later use throws. */
  release(): void;
}

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

export class FrozenWeight implements Frozen {
  readonly dtype = 'bfloat16';
  readonly shape: number[];
  private data: Uint16Array | null;
  private readonly onRelease: (() => void) | null;

  /**
   * A weight already in bfloat16 (e.g. read from a BF16 safetensors file, or a view of its mapping
   * with the mapping's `release`): `bits` is kept, not copied.
   */
  constructor(bits: Uint16Array, shape: number[], onRelease: (() => void) | null = null) {
    this.data = bits;
    this.shape = shape;
    this.onRelease = onRelease;
  }

  /** The bits (throws once released). */
  get bits(): Uint16Array {
    if (this.data === null) throw new Error('FrozenWeight: used after release (its model was disposed)');
    return this.data;
  }

  /** A float32 weight rounded to bfloat16. */
  static fromFloat32(values: Float32Array, shape: number[]): FrozenWeight {
    return new FrozenWeight(toBf16Bits(values), shape);
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
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

  release(): void {
    if (this.data === null) return;
    this.data = null;
    this.onRelease?.();
  }
}

/**
 * A frozen float32 weight in JS memory: a Float32Array of its own, or a view into a mapped
 * safetensors file (`./io/mapped.ts`), whose pages are the page cache's until written. Products read
 * it where it lies through the GEMM (`matMulFloat32Weight`), else through a transient tensor.
 * `release` drops the view and tells the owner of the memory (the mapping is unmapped when its last
 * weight lets go), so a weight of a disposed model throws instead of reading unmapped memory.
 */
export class FrozenFloat32Weight implements Frozen {
  readonly dtype = 'float32';
  readonly shape: number[];
  readonly size: number;
  private data: Float32Array | null;
  private readonly onRelease: (() => void) | null;

  constructor(values: Float32Array, shape: number[], onRelease: (() => void) | null = null) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) throw new Error(`FrozenFloat32Weight: ${values.length} values for shape [${shape}]`);
    this.data = values;
    this.shape = shape;
    this.size = size;
    this.onRelease = onRelease;
  }

  /** The values (throws once released). */
  get values(): Float32Array {
    if (this.data === null) throw new Error('FrozenFloat32Weight: used after release (its model was disposed)');
    return this.data;
  }

  materialize(): tf.Tensor {
    // Copied either way: a backend that keeps the array it is given must never hold mapped memory.
    if (!canWriteInPlace()) return tf.tensor(this.values.slice(), this.shape, 'float32');
    const t = tf.zeros(this.shape, 'float32');
    const { array, base } = float32Storage(t, true);
    array.set(this.values, base);
    return t;
  }

  matMulWith(x: tf.Tensor, transpose: boolean): tf.Tensor {
    return matMulFloat32Weight(x, this.values, this.shape, transpose) ?? tf.tidy(() => tf.matMul(x, this.materialize(), false, transpose));
  }

  gatherRows(ids: ArrayLike<number>): tf.Tensor2D {
    const [rows, width] = this.shape as [number, number];
    const values = this.values;
    const out = new Float32Array(ids.length * width);
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r]!;
      if (!(id >= 0 && id < rows)) throw new Error(`FrozenFloat32Weight.gatherRows: id ${id} outside [0, ${rows})`);
      out.set(values.subarray(id * width, (id + 1) * width), r * width);
    }
    return tf.tensor2d(out, [ids.length, width]);
  }

  release(): void {
    if (this.data === null) return;
    this.data = null;
    this.onRelease?.();
  }
}

/** x [..., in] · Wᵀ → [..., out] for a frozen W [out, in]; the gradient reaches x only. */
export function frozenMatMulT(x: tf.Tensor, w: Frozen): tf.Tensor {
  if (!isRecordingGradients()) return w.matMulWith(x, true);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const value = w.matMulWith(input, true);
    const gradFunc = (dy: tf.Tensor): tf.Tensor => w.matMulWith(dy, false); // [..., out] · [out, in]
    return { value, gradFunc };
  }) as (input: tf.Tensor) => tf.Tensor;
  return op(x);
}

/**
 * x [..., in] · [W₁; W₂; …]ᵀ → [..., Σ outᵢ] for frozen Wᵢ [outᵢ, in] (inference only: no gradient):
 * a fused q|k|v or gate|up without a fused copy of the weights. Float32 weights are written side by
 * side by the GEMM; otherwise the products are concatenated.
 */
export function frozenMatMulTConcat(x: tf.Tensor, ws: readonly Frozen[]): tf.Tensor {
  if (ws.length === 1) return ws[0]!.matMulWith(x, true);
  const f32 = ws.every((w) => w instanceof FrozenFloat32Weight)
    ? matMulFloat32WeightsT(x, (ws as FrozenFloat32Weight[]).map((w) => ({ values: w.values, shape: w.shape })))
    : null;
  return f32 ?? tf.tidy(() => tf.concat(ws.map((w) => w.matMulWith(x, true)), -1));
}
