import { formatEngineInfo } from '../../src/cli/env.js';
import { initEngine } from '../../src/engine/index.js';

describe('rlhf env output', () => {
  it('names the backend, threads, SIMD, versions and each patched kernel', async () => {
    const text = formatEngineInfo(await initEngine({ backend: 'wasm' }));
    expect(text).toMatch(/^backend: {3}wasm$/m);
    expect(text).toMatch(/^threads: {3}1$/m);
    expect(text).toMatch(/^simd: {6}(yes|no)$/m);
    expect(text).toMatch(/^ {2}tfjs-backend-wasm +4\.\d+\.\d+$/m);
    for (const k of ['UnsortedSegmentSum', 'BatchMatMul', 'StridedSlice', 'Identity']) expect(text).toContain(`  ${k}`);
    expect(text).toMatch(/^matmul: {4}(openblas|accelerate) cblas_sgemm via koffi .*|^matmul: {4}rlhf-kit's own sgemm \(native\/gemm.c, built at npm install\) via koffi .*|^matmul: {4}wasm \(XNNPACK\) — no native GEMM: .*/m);
    expect(text).toMatch(/^backprop: {2}lean/m);
  });

  it('says matmuls are multi-threaded when BLAS is live, and how to get it when not', () => {
    const base = {
      requested: 'wasm' as const, backend: 'wasm' as const, versions: {}, threads: 1, simd: true,
      patchedKernels: [], patchedGradients: [], leanBackprop: true, seed: null,
    };
    const blas = formatEngineInfo({ ...base, matmul: { path: 'blas', vendor: 'openblas', library: '/x/libopenblas.so.0', threads: 2, reason: null } });
    expect(blas).toContain('matmul:    openblas cblas_sgemm via koffi (/x/libopenblas.so.0, 2 threads)');
    expect(blas).toContain('note:      matmuls run on 2 BLAS thread(s)');
    const wasm = formatEngineInfo({ ...base, matmul: { path: 'wasm', vendor: null, library: null, threads: null, reason: 'engine.blas is off' } });
    expect(wasm).toContain('matmul:    wasm (XNNPACK) — no native GEMM: engine.blas is off');
    expect(wasm).toContain('libopenblas0-pthread');
  });

  it('shows the asked backend when auto resolved it', () => {
    const text = formatEngineInfo({
      requested: 'auto', backend: 'cpu', versions: { node: '20.0.0' }, threads: 1, simd: null,
      patchedKernels: [], matmul: null, patchedGradients: [], leanBackprop: true, seed: null,
    });
    expect(text.split('\n').slice(0, 3)).toEqual(['backend:   cpu (asked: auto)', 'threads:   1', 'simd:      n/a']);
    expect(text).toContain('  (none on this backend)');
  });
});

describe('rlhf env --model', () => {
  it('prints the shipped base model\'s parameter count and memory estimate', async () => {
    const { run } = await import('../../src/cli/main.js');
    const { packagePath } = await import('../../src/paths.js');
    const printed: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void printed.push(a.join(' '));
    const io = { out: (t: string) => void printed.push(t), err: (t: string) => void printed.push(t), debug: false };
    try {
      expect(await run(['env', '--backend', 'cpu', '--model', packagePath('data', 'world', 'base')], io)).toBe(0);
    } finally {
      console.log = log;
    }
    const text = printed.join('\n');
    expect(text).toContain(`model:     ${packagePath('data', 'world', 'base')}`);
    // 1,115,264 weights: vocab 1024 × hidden 128 tied, 4 layers of attention + SwiGLU 384, norms.
    expect(text.replace(/[,_ ]/g, '')).toMatch(/1115264/);
  });

  it('a folder without config.json is a clear error, exit 2', async () => {
    const { run } = await import('../../src/cli/main.js');
    const errs: string[] = [];
    const io = { out: () => undefined, err: (t: string) => void errs.push(t), debug: false };
    expect(await run(['env', '--backend', 'cpu', '--model', '/nonexistent/model'], io)).toBe(2);
    expect(errs.join('\n')).toContain('/nonexistent/model');
  });
});
