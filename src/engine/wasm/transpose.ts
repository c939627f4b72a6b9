import { Transpose, util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { activeBlas } from '../blas/index.js';
import { asWasmBackend, heapOffset } from './heap.js';

/** Below this many elements per matrix the stock kernel keeps the transpose (FFI cost dominates). */
const BLAS_MIN_ELEMENTS = 4096;

/**
 * Transpose for the wasm backend: a float32 swap of the last two axes (a weight matrix, a batch of
 * them) goes to the BLAS's `somatcopy` when one is live, on the wasm heap (the stock kernel takes
 * ~2 ns per element on weight-sized matrices; somatcopy ~0.1). Every other case, the stock kernel.
 */
export function blasTranspose(stock: KernelConfig): KernelConfig {
  const kernelFunc = (args: Parameters<KernelFunc>[0]): TensorInfo => {
    const { x } = args.inputs as { x: TensorInfo };
    const perm = (args.attrs?.['perm'] ?? []) as number[];
    const transpose = activeBlas()?.transpose ?? null;
    const rank = x.shape.length;
    const rows = x.shape[rank - 2] ?? 0;
    const cols = x.shape[rank - 1] ?? 0;
    if (transpose === null || x.dtype !== 'float32' || rank < 2 || rows * cols < BLAS_MIN_ELEMENTS || !swapsLastTwo(perm)) {
      return stock.kernelFunc(args) as TensorInfo;
    }
    const backend = asWasmBackend(args.backend);
    const out = backend.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer; // after makeOutput: growth replaces it
    const inBase = heapOffset(backend, x);
    const outBase = heapOffset(backend, out);
    const size = rows * cols;
    const count = util.sizeFromShape(x.shape.slice(0, -2));
    for (let i = 0; i < count; i++) {
      transpose(rows, cols, new Float32Array(heap, inBase + 4 * i * size, size), new Float32Array(heap, outBase + 4 * i * size, size));
    }
    return out;
  };
  return { kernelName: Transpose, backendName: 'wasm', kernelFunc: kernelFunc as KernelFunc };
}

/** perm = [0, 1, …, r−3, r−1, r−2]. */
function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  for (let i = 0; i < r - 2; i++) if (perm[i] !== i) return false;
  return r >= 2 && perm[r - 2] === r - 1 && perm[r - 1] === r - 2;
}
