import { initEngine } from '../../src/engine/index.js';
import { UserError } from '../../src/errors.js';

describe('initEngine', () => {
  it('wasm: reports versions, SIMD, one thread and the patched kernels', async () => {
    const info = await initEngine({ backend: 'wasm', seed: 5 });
    expect(info.backend).toBe('wasm');
    expect(info.threads).toBe(1);
    expect(typeof info.simd).toBe('boolean');
    expect(info.versions['tfjs-core']).toMatch(/^4\./);
    expect(info.versions['tfjs-backend-wasm']).toMatch(/^4\./);
    expect(info.patchedKernels.map((k) => k.name).sort()).toEqual(['BatchMatMul', 'GatherV2', 'Identity', 'StridedSlice', 'Transpose', 'UnsortedSegmentSum']);
    expect(info.patchedGradients.map((k) => k.name).sort()).toEqual(['BatchMatMul', 'StridedSlice']);
    expect(info.seed).toBe(5);
  });

  it('cpu: no kernel patches, gradient patches still apply', async () => {
    const info = await initEngine({ backend: 'cpu' });
    expect(info).toMatchObject({ requested: 'cpu', backend: 'cpu', threads: 1, simd: null, patchedKernels: [], seed: null });
    expect(info.patchedGradients.length).toBe(2);
  });

  it('tensorflow without tfjs-node: a UserError saying how to install it; auto falls back to wasm', async () => {
    let nativeError: unknown = null;
    try {
      await initEngine({ backend: 'tensorflow' });
    } catch (e) {
      nativeError = e;
    }
    const auto = await initEngine({ backend: 'auto' });
    if (nativeError === null) {
      expect(auto.backend).toBe('tensorflow'); // a machine that has tfjs-node
    } else {
      expect(nativeError).toBeInstanceOf(UserError);
      expect((nativeError as Error).message).toContain('npm install @tensorflow/tfjs-node@');
      expect(auto.backend).toBe('wasm');
      expect(auto.requested).toBe('auto');
    }
  });

  it('rejects threads it cannot give and bad values', async () => {
    await expect(initEngine({ backend: 'wasm', threads: 2 })).rejects.toThrow(/engine\.threads: 2 threads are not available/);
    await expect(initEngine({ backend: 'cpu', threads: 0 })).rejects.toBeInstanceOf(UserError);
    await expect(initEngine({ backend: 'gpu' as never })).rejects.toThrow(/engine\.backend: expected auto \| wasm \| cpu \| tensorflow/);
  });
});
