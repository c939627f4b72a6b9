import { getKernel, StridedSlice, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { asWasmBackend, type WasmBackend } from './heap.js';

/**
 * The stock wasm StridedSlice labels its strided-path output float32 whatever the input dtype, so an
 * int32 slice reads back as denormal floats (the bits are the right int32s). We run the stock kernel
 * and correct the label; bool (1-byte) goes through int32, since the C++ copies 4-byte elements.
 */
export function stridedSliceDtypeFix(stock: KernelConfig): KernelConfig {
  const run = (args: Parameters<KernelFunc>[0]): TensorInfo => stock.kernelFunc(args) as TensorInfo;
  const kernelFunc = (args: Parameters<KernelFunc>[0]): TensorInfo => {
    const backend = asWasmBackend(args.backend);
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'float32') return run(args);
    if (x.dtype === 'int32') return relabel(backend, run(args), 'int32');
    const cast = castKernel();
    const asInt = cast({ inputs: { x }, backend: args.backend, attrs: { dtype: 'int32' } }) as TensorInfo;
    const sliced = relabel(backend, run({ ...args, inputs: { x: asInt } }), 'int32');
    const out = cast({ inputs: { x: sliced }, backend: args.backend, attrs: { dtype: x.dtype } }) as TensorInfo;
    backend.disposeData(asInt.dataId);
    backend.disposeData(sliced.dataId);
    return out;
  };
  return { kernelName: StridedSlice, backendName: 'wasm', kernelFunc: kernelFunc as KernelFunc };
}

function relabel(backend: WasmBackend, info: TensorInfo, dtype: 'int32'): TensorInfo {
  if (info.dtype !== dtype) backend.dataIdMap.get(info.dataId).dtype = dtype;
  return { ...info, dtype };
}

function castKernel(): KernelFunc {
  const cast = getKernel('Cast', 'wasm');
  if (cast === undefined) throw new Error('rlhf-kit StridedSlice patch: wasm Cast kernel missing');
  return cast.kernelFunc;
}
