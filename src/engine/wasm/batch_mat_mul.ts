import {
  BatchMatMul, broadcast_util, getKernel, util,
  type KernelConfig, type KernelFunc, type TensorInfo,
} from '@tensorflow/tfjs-core';
import { activeBlas, type BlasLibrary } from '../blas/index.js';
import {
  asWasmBackend, cppId, heapOffset, registerView, releaseView, shapeBytes, type WasmBackend,
} from './heap.js';

/**
 * BatchMatMul for the wasm backend that stays on XNNPACK's fast path.
 *
 * The stock kernel hands every product to one C++ entry point, which uses XNNPACK only for a single
 * un-transposed 2-D product; transpose flags or batch dims drop it to a naive loop 6–20× slower.
 * Those are exactly the products of attention (q·kᵀ, per head) and of every matmul gradient
 * (dy·bᵀ, aᵀ·dy). So here:
 *  1. a transposed operand is first made row-major by the (fast) stock Transpose kernel;
 *  2. a shared right operand (batch 1, e.g. `x @ W`) folds the left batch into rows: one 2-D call;
 *  3. otherwise each batch entry is one 2-D call on zero-copy views into the operands and output.
 * Tiny per-entry products (≤ TINY_PRODUCT multiply-adds) stay on the stock loop: there the ~3 µs
 * cost of one XNNPACK call exceeds the loop's (~1 ns per multiply-add).
 *
 * When a system BLAS is live (`../blas`), every product of at least BLAS_MIN_PRODUCT multiply-adds
 * goes to its sgemm instead, straight on the wasm heap (see `blasProducts`).
 */
const TINY_PRODUCT = 4096;
/**
 * Below this many multiply-adds per entry wasm keeps the product. One sgemm call through koffi
 * costs ~1 µs, less than one XNNPACK call, so the BLAS path wins from very small sizes on.
 */
const BLAS_MIN_PRODUCT = 512;

type CppBatchMatMul = (
  aId: number, aShape: Uint8Array, aRank: number, bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number,
) => void;

const cppKernels = new WeakMap<object, CppBatchMatMul>();

/** The C++ `BatchMatMul` entry point of this backend instance (cwrap once per instance). */
function cppBatchMatMul(backend: WasmBackend): CppBatchMatMul {
  let fn = cppKernels.get(backend.wasm);
  if (fn === undefined) {
    fn = backend.wasm.cwrap(BatchMatMul, null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]) as CppBatchMatMul;
    cppKernels.set(backend.wasm, fn);
  }
  return fn;
}

/** out[m, n] = a[m, k] · b[k, n] by ids — the one case the C++ kernel sends to XNNPACK. */
function matMul2d(backend: WasmBackend, aId: number, bId: number, outId: number, m: number, k: number, n: number): void {
  cppBatchMatMul(backend)(aId, shapeBytes([1, m, k]), 3, bId, shapeBytes([1, k, n]), 3, false, false, outId);
}

/** Swap the last two axes with the stock wasm Transpose kernel (a new tensor the caller disposes). */
function transposeLastTwo(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  const transpose = getKernel('Transpose', 'wasm');
  if (transpose === undefined) throw new Error('rlhf-kit BatchMatMul patch: wasm Transpose kernel missing');
  return transpose.kernelFunc({ inputs: { x }, backend: backend as never, attrs: { perm } }) as TensorInfo;
}

/**
 * Flat index into an operand's batch dims for flat output batch index `i`, under numpy broadcasting
 * (the operand's batch shape is right-aligned to `outBatch`; its size-1 dims repeat).
 */
export function broadcastBatchIndex(outBatch: readonly number[], inBatch: readonly number[], i: number): number {
  let index = 0;
  let stride = 1;
  let rest = i;
  for (let d = outBatch.length - 1; d >= 0; d--) {
    const outDim = outBatch[d]!;
    const coord = rest % outDim;
    rest = Math.floor(rest / outDim);
    const inD = d - (outBatch.length - inBatch.length);
    if (inD < 0) continue;
    const inDim = inBatch[inD]!;
    if (inDim !== 1) index += coord * stride;
    stride *= inDim;
  }
  return index;
}

function batchMatMulFast(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const transposeA = Boolean(args.attrs?.['transposeA']);
  const transposeB = Boolean(args.attrs?.['transposeB']);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error(`BatchMatMul (wasm): float32 only, got ${a.dtype} and ${b.dtype}`);
  }
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const m = a.shape[transposeA ? aRank - 1 : aRank - 2]!;
  const k = a.shape[transposeA ? aRank - 2 : aRank - 1]!;
  const kB = b.shape[transposeB ? bRank - 1 : bRank - 2]!;
  const n = b.shape[transposeB ? bRank - 2 : bRank - 1]!;
  util.assert(k === kB, () => `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ` +
    `${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = broadcast_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const out = backend.makeOutput([...outBatch, m, n], 'float32');
  if (m * n === 0) return out;
  if (k === 0) {
    backend.typedArrayFromHeap(out).fill(0);
    return out;
  }

  const aCount = util.sizeFromShape(aBatch);
  const bCount = util.sizeFromShape(bBatch);
  const outCount = util.sizeFromShape(outBatch);
  const blas = activeBlas();
  if (blas !== null && m * k * n >= BLAS_MIN_PRODUCT) {
    blasProducts(blas, backend, a, b, out, { m, k, n, transposeA, transposeB, aBatch, bBatch, outBatch });
    return out;
  }
  if (m * k * n <= TINY_PRODUCT && aCount === bCount) {
    const a3d = transposeA ? [aCount, k, m] : [aCount, m, k];
    const b3d = transposeB ? [bCount, n, k] : [bCount, k, n];
    cppBatchMatMul(backend)(cppId(backend, a), shapeBytes(a3d), 3, cppId(backend, b), shapeBytes(b3d), 3,
      transposeA, transposeB, cppId(backend, out));
    return out;
  }

  // 1. Row-major operands: [...aBatch, m, k] and [...bBatch, k, n].
  const aRows = transposeA ? transposeLastTwo(backend, a) : a;
  const bRows = transposeB ? transposeLastTwo(backend, b) : b;
  try {
    if (bCount === 1 && aCount === outCount) {
      // 2. Shared right operand: [aCount·m, k] · [k, n] in one call.
      matMul2d(backend, cppId(backend, aRows), cppId(backend, bRows), cppId(backend, out), aCount * m, k, n);
    } else {
      // 3. One 2-D product per output batch entry, on views (4 bytes per float32).
      const aBase = heapOffset(backend, aRows);
      const bBase = heapOffset(backend, bRows);
      const outBase = heapOffset(backend, out);
      for (let i = 0; i < outCount; i++) {
        const ai = broadcastBatchIndex(outBatch, aBatch, i);
        const bi = broadcastBatchIndex(outBatch, bBatch, i);
        const aView = registerView(backend, aBase + 4 * ai * m * k, m * k);
        const bView = registerView(backend, bBase + 4 * bi * k * n, k * n);
        const outView = registerView(backend, outBase + 4 * i * m * n, m * n);
        matMul2d(backend, aView, bView, outView, m, k, n);
        releaseView(backend, aView);
        releaseView(backend, bView);
        releaseView(backend, outView);
      }
    }
  } finally {
    if (aRows !== a) backend.disposeData(aRows.dataId);
    if (bRows !== b) backend.disposeData(bRows.dataId);
  }
  return out;
}

interface ProductShape {
  m: number; k: number; n: number;
  transposeA: boolean; transposeB: boolean;
  aBatch: number[]; bBatch: number[]; outBatch: number[];
}

/**
 * The products by BLAS sgemm on Float32Array views of the wasm heap: no copy in or out. Transpose
 * flags become sgemm's flags (row strides stay the stored row lengths), so nothing is transposed
 * physically. A shared right operand with an untransposed left one folds the batch into rows (one
 * call); otherwise one call per output batch entry.
 */
function blasProducts(blas: BlasLibrary, backend: WasmBackend, a: TensorInfo, b: TensorInfo, out: TensorInfo, s: ProductShape): void {
  const { m, k, n, transposeA, transposeB, aBatch, bBatch, outBatch } = s;
  const sgemm = blas.sgemm;
  // The heap buffer is read after makeOutput: growing memory replaces it.
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  const aBase = heapOffset(backend, a);
  const bBase = heapOffset(backend, b);
  const outBase = heapOffset(backend, out);
  const lda = transposeA ? m : k; // stored a entry: [k, m] or [m, k]
  const ldb = transposeB ? k : n; // stored b entry: [n, k] or [k, n]
  const aCount = util.sizeFromShape(aBatch);
  const bCount = util.sizeFromShape(bBatch);
  const outCount = util.sizeFromShape(outBatch);
  if (bCount === 1 && aCount === outCount && !transposeA) {
    const rows = aCount * m;
    sgemm(false, transposeB, rows, n, k, new Float32Array(heap, aBase, rows * k), lda,
      new Float32Array(heap, bBase, k * n), ldb, new Float32Array(heap, outBase, rows * n), n);
    return;
  }
  const address = heapAddress(blas, heap);
  if (address !== null) {
    // Many products (attention: one per batch row and head): pass addresses, not typed-array views.
    for (let i = 0; i < outCount; i++) {
      const ai = aCount === outCount ? i : broadcastBatchIndex(outBatch, aBatch, i);
      const bi = bCount === outCount ? i : broadcastBatchIndex(outBatch, bBatch, i);
      sgemm(transposeA, transposeB, m, n, k, address + aBase + 4 * ai * m * k, lda,
        address + bBase + 4 * bi * k * n, ldb, address + outBase + 4 * i * m * n, n);
    }
    return;
  }
  for (let i = 0; i < outCount; i++) {
    const ai = aCount === outCount ? i : broadcastBatchIndex(outBatch, aBatch, i);
    const bi = bCount === outCount ? i : broadcastBatchIndex(outBatch, bBatch, i);
    sgemm(transposeA, transposeB, m, n, k,
      new Float32Array(heap, aBase + 4 * ai * m * k, m * k), lda,
      new Float32Array(heap, bBase + 4 * bi * k * n, k * n), ldb,
      new Float32Array(heap, outBase + 4 * i * m * n, m * n), n);
  }
}

/** Native address of the wasm heap, per heap buffer (a new buffer after memory growth gets its own). */
const heapAddresses = new WeakMap<ArrayBuffer, number>();

function heapAddress(blas: BlasLibrary, heap: ArrayBuffer): number | null {
  if (blas.addressOf === null) return null;
  let at = heapAddresses.get(heap);
  if (at === undefined) {
    at = blas.addressOf(heap);
    heapAddresses.set(heap, at);
  }
  return at;
}

export const fastBatchMatMulConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: 'wasm',
  kernelFunc: batchMatMulFast as KernelFunc,
};
