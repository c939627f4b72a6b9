import { formatEngineInfo } from '../../src/cli/env.js';
import { initEngine } from '../../src/engine/index.js';

describe('rlhf env output', () => {
  it('names the backend, threads, SIMD, versions and each patched kernel', async () => {
    const text = formatEngineInfo(await initEngine({ backend: 'wasm' }));
    expect(text).toMatch(/^backend: {3}wasm$/m);
    expect(text).toMatch(/^threads: {3}1$/m);
    expect(text).toMatch(/^simd: {6}(yes|no)$/m);
    expect(text).toMatch(/^ {2}tfjs-backend-wasm +4\.\d+\.\d+$/m);
    for (const k of ['UnsortedSegmentSum', 'BatchMatMul', 'StridedSlice']) expect(text).toContain(`  ${k}`);
  });

  it('shows the asked backend when auto resolved it', () => {
    const text = formatEngineInfo({
      requested: 'auto', backend: 'cpu', versions: { node: '20.0.0' }, threads: 1, simd: null,
      patchedKernels: [], patchedGradients: [], seed: null,
    });
    expect(text.split('\n').slice(0, 3)).toEqual(['backend:   cpu (asked: auto)', 'threads:   1', 'simd:      n/a']);
    expect(text).toContain('  (none on this backend)');
  });
});
