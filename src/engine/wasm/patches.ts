import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { fastBatchMatMulConfig } from './batch_mat_mul.js';
import { rowGather } from './gather.js';
import { sharingIdentity } from './identity.js';
import { stridedSliceDtypeFix } from './strided_slice.js';
import { blasTranspose } from './transpose.js';
import { unsortedSegmentSumConfig } from './unsorted_segment_sum.js';

/** A kernel we register on the wasm backend, and why (printed by `rlhf env`). */
export interface KernelPatch {
  kernelName: string;
  reason: string;
  /** Our kernel, given the stock one (undefined where wasm has none). */
  make(stock: KernelConfig | undefined): KernelConfig;
}

export const WASM_PATCHES: readonly KernelPatch[] = [
  {
    kernelName: unsortedSegmentSumConfig.kernelName,
    reason: 'missing on wasm; it is the gradient of gather (embedding lookups)',
    make: () => unsortedSegmentSumConfig,
  },
  {
    kernelName: fastBatchMatMulConfig.kernelName,
    reason: 'stock kernel leaves XNNPACK for transpose flags and batch dims (attention, every matmul gradient)',
    make: () => fastBatchMatMulConfig,
  },
  {
    kernelName: 'Identity',
    reason: 'stock kernel copies the data; sharing it (as cpu does) makes clones and saved activations free',
    make: (stock) => {
      if (stock === undefined) throw new Error('rlhf-kit: wasm Identity kernel missing');
      return sharingIdentity(stock);
    },
  },
  {
    kernelName: 'GatherV2',
    reason: 'stock kernel costs in proportion to the whole table; row lookups along axis 0 (embeddings) are copied on the heap',
    make: (stock) => {
      if (stock === undefined) throw new Error('rlhf-kit: wasm GatherV2 kernel missing');
      return rowGather(stock);
    },
  },
  {
    kernelName: 'Transpose',
    reason: 'stock kernel is slow on weight-sized matrices; with a native GEMM library, swapping the last two axes runs on its transpose (somatcopy)',
    make: (stock) => {
      if (stock === undefined) throw new Error('rlhf-kit: wasm Transpose kernel missing');
      return blasTranspose(stock);
    },
  },
  {
    kernelName: 'StridedSlice',
    reason: 'stock kernel returns int32/bool strided slices labelled float32 (garbage values)',
    make: (stock) => {
      if (stock === undefined) throw new Error('rlhf-kit: wasm StridedSlice kernel missing');
      return stridedSliceDtypeFix(stock);
    },
  },
];

/** Stock kernels we replaced, so `uninstallWasmPatches` can put them back (the bench compares). */
const stockKernels = new Map<string, KernelConfig | undefined>();

/**
 * Register the patched kernels on the wasm backend; idempotent. Call after the wasm backend has
 * initialised: the stock kernels' setup functions run at backend init, and `uninstall` relies on it.
 * Returns the names of the patched kernels.
 */
export function installWasmPatches(): string[] {
  for (const patch of WASM_PATCHES) {
    if (stockKernels.has(patch.kernelName)) continue;
    const stock = getKernel(patch.kernelName, 'wasm');
    const config = patch.make(stock);
    stockKernels.set(patch.kernelName, stock);
    if (stock !== undefined) unregisterKernel(patch.kernelName, 'wasm');
    registerKernel(config);
  }
  return wasmPatchNames();
}

/** Restore the stock wasm kernels (a kernel that had none is simply removed again). */
export function uninstallWasmPatches(): void {
  for (const [name, stock] of stockKernels) {
    unregisterKernel(name, 'wasm');
    if (stock !== undefined) registerKernel(stock);
  }
  stockKernels.clear();
}

/** Names of the kernels currently patched. */
export function wasmPatchNames(): string[] {
  return [...stockKernels.keys()];
}
