import { Identity, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { asWasmBackend } from './heap.js';

/**
 * Identity for the wasm backend that shares its input's data (ref count + 1) instead of copying it,
 * as the cpu backend's Identity does. Tensor data is immutable, so a copy buys nothing — and Identity
 * is what `tf.clone` and every tensor saved for backprop (tfjs's `keep(clone(x))`, customGrad's
 * `save`) run: with the stock kernel each saved activation was a second copy of it.
 * Strings keep the stock kernel (their values live in JS, not on the heap).
 */
export function sharingIdentity(stock: KernelConfig): KernelConfig {
  const kernelFunc = (args: Parameters<KernelFunc>[0]): TensorInfo => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return stock.kernelFunc(args) as TensorInfo;
    asWasmBackend(args.backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { kernelName: Identity, backendName: 'wasm', kernelFunc: kernelFunc as KernelFunc };
}
