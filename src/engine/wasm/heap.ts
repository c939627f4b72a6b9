import type { DataType, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * The parts of tfjs-backend-wasm's `BackendWasm` the kernel patches use. Its published typings keep
 * the id counter private, and we need it to register zero-copy views, so we describe it here.
 */
export interface WasmBackend {
  wasm: {
    HEAPU8: Uint8Array;
    cwrap(name: string, ret: null | 'number', args: string[]): (...args: unknown[]) => unknown;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdNextNumber: number;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number; dtype: DataType } };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export function asWasmBackend(backend: unknown): WasmBackend {
  const b = backend as Partial<WasmBackend>;
  if (b.wasm === undefined || b.dataIdMap === undefined || typeof b.dataIdNextNumber !== 'number') {
    throw new Error('rlhf-kit wasm kernel patch: backend is not tfjs-backend-wasm 4.x');
  }
  return b as WasmBackend;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: WasmBackend, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}

/** The C++ side's id of a tensor (what the wasm kernels take). */
export function cppId(backend: WasmBackend, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).id;
}

/**
 * Registers `size` elements starting at `byteOffset` under a fresh C++ tensor id, so a stock C++
 * kernel can read or write a slice of a larger tensor without a copy. The id comes from the
 * backend's own counter, so it never collides with a real tensor. Release with `releaseView`
 * (which frees nothing: the memory belongs to the parent tensor).
 */
export function registerView(backend: WasmBackend, byteOffset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, byteOffset);
  return id;
}

/** Forget a view id; C++ also drops operator caches keyed by it (xnn_matmul caches by `b` id). */
export function releaseView(backend: WasmBackend, id: number): void {
  backend.wasm.tfjs.disposeData(id);
}

/** Int32 shape as the byte array the `'array'` cwrap argument expects. */
export function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}
