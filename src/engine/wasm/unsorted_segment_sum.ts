import {
  UnsortedSegmentSum, util,
  type KernelConfig, type KernelFunc, type TensorInfo,
} from '@tensorflow/tfjs-core';
import { asWasmBackend } from './heap.js';

/**
 * out[s, ...] = Σ x[i, ...] over rows i with segmentIds[i] = s, for s in [0, numSegments).
 * Rows whose id is out of range are dropped (TensorFlow's rule). Pure arithmetic on typed arrays so
 * it can be unit-tested without a backend.
 */
export function segmentSum(
  x: Float32Array | Int32Array, segmentIds: Int32Array, numSegments: number,
  out: Float32Array | Int32Array,
): void {
  const rows = segmentIds.length;
  const inner = rows === 0 ? 0 : x.length / rows;
  out.fill(0);
  for (let i = 0; i < rows; i++) {
    const s = segmentIds[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j]! += x[src + j]!;
  }
}

/**
 * UnsortedSegmentSum is missing from tfjs-backend-wasm, and it is the gradient of `gather` — of
 * every embedding lookup. The wasm heap is plain memory, so we sum straight into the output.
 */
function unsortedSegmentSumWasm(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(args.backend);
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = Number(args.attrs?.['numSegments']);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  const idRank = segmentIds.shape.length;
  util.assert(
    util.arraysEqual(x.shape.slice(0, idRank), segmentIds.shape),
    () => `UnsortedSegmentSum (wasm): segmentIds shape ${segmentIds.shape} must prefix x shape ${x.shape}`,
  );
  const out = backend.makeOutput([numSegments, ...x.shape.slice(idRank)], x.dtype);
  // Views are taken after makeOutput: an allocation may grow (and replace) the heap buffer.
  segmentSum(
    backend.typedArrayFromHeap(x) as Float32Array | Int32Array,
    backend.typedArrayFromHeap(segmentIds) as Int32Array,
    numSegments,
    backend.typedArrayFromHeap(out) as Float32Array | Int32Array,
  );
  return out;
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSumWasm as KernelFunc,
};
