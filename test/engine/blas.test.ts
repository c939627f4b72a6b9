/**
 * The BLAS path of the wasm BatchMatMul (sgemm via koffi, on the wasm heap), on each library it can
 * take — a system OpenBLAS (RLHF_BLAS=system) and rlhf-kit's own GEMM (RLHF_BLAS=bundled) — against
 * the cpu backend: values and gradients within 1e-5 normwise relative, every transpose combination,
 * batched and broadcast. Each case also counts the sgemm calls, so a case that quietly ran on wasm
 * fails. A library that is missing has its cases skipped under a title that says so (CI installs
 * OpenBLAS with .ci/setup.sh and builds the GEMM with npm ci); the fallback cases run everywhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { availableParallelism } from 'node:os';
import { activeBlas, blasCandidates, blasThreadsFor, configureBlas, DEFAULT_BLAS_THREADS, loadBlas, type Sgemm } from '../../src/engine/blas/index.js';
import { expectSameOutputs, randomValues, runOn } from '../helpers/engine.js';

// Both libraries the BLAS path can take: a system OpenBLAS and rlhf-kit's own GEMM (native/gemm.c).
const SOURCES = ['system', 'bundled'] as const;
const lookups = await Promise.all(SOURCES.map((source) => loadBlas(source)));
const lookup = await loadBlas();

/** Run `fn` on wasm with the BLAS path on, counting sgemm calls. */
async function runOnBlas(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ outs: Float32Array[]; calls: number }> {
  const info = await initEngine({ backend: 'wasm', blas: 'auto' });
  expect(info.matmul?.path).toBe('blas');
  const lib = activeBlas()!;
  const sgemm = lib.sgemm;
  let calls = 0;
  lib.sgemm = ((...args: Parameters<Sgemm>) => { calls++; sgemm(...args); }) as Sgemm;
  try {
    const outs = tf.tidy(fn);
    const list = Array.isArray(outs) ? outs : [outs];
    const values = list.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(list);
    return { outs: values, calls };
  } finally {
    lib.sgemm = sgemm;
  }
}

/** Shape of an operand stored for the given transpose flag (last two axes swapped). */
const stored = (s: number[], t: boolean): number[] => (t ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s);

/** out, ∂/∂a and ∂/∂b of sum(matMul(a, b) ⊙ w) — the gradients are matmuls with other flags. */
function productAndGrads(aShape: number[], bShape: number[], tA: boolean, tB: boolean): tf.Tensor[] {
  const x = tf.tensor(randomValues(7, aShape), aShape);
  const y = tf.tensor(randomValues(8, bShape), bShape);
  const out = tf.matMul(x, y, tA, tB);
  const w = tf.tensor(randomValues(9, out.shape), out.shape);
  const [dx, dy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, tA, tB), w)))([x, y]);
  return [out, dx!, dy!];
}

// [a shape, b shape] before the transpose flags; every product is ≥ 512 multiply-adds per entry.
const SHAPES: [string, number[], number[]][] = [
  ['2-D', [33, 20], [20, 40]],
  ['2-D, OpenBLAS blocks', [130, 96], [96, 70]],
  ['batched', [3, 24, 16], [3, 16, 20]],
  ['rank-3 x rank-2 (x·W, batch folded into rows)', [3, 20, 16], [16, 24]],
  ['rank-2 x rank-3', [20, 16], [3, 16, 24]],
  ['rank-4 heads', [2, 3, 17, 8], [2, 3, 8, 17]],
];
const FLAGS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const CASES = SHAPES.flatMap(([name, a, b]) => FLAGS.map(([tA, tB]) => [name, tA, tB, a, b] as const));

for (const [i, source] of SOURCES.entries()) {
  const found = lookups[i]!;
  if (found.library === null) {
    console.warn(`test/engine/blas.test.ts: RLHF_BLAS=${source} cases skipped: ${found.reason}`);
    describe.skip(`SKIPPED — BatchMatMul via RLHF_BLAS=${source}: ${found.reason}`, () => it('needs the library', () => undefined));
    continue;
  }
  describe(`RLHF_BLAS=${source}`, () => {
    beforeAll(() => {
      process.env['RLHF_BLAS'] = source;
    });
    afterAll(async () => {
      delete process.env['RLHF_BLAS'];
      await initEngine({ backend: 'wasm' });
    });

  describe(`BatchMatMul on wasm via ${found.library.vendor} (${found.library.path})`, () => {
    afterAll(async () => {
      await initEngine({ backend: 'wasm' });
    });

    it.each(CASES)('%s, transposeA=%s transposeB=%s: values and gradients match cpu', async (_n, tA, tB, a, b) => {
      const aShape = stored(a, tA);
      const bShape = stored(b, tB);
      const cpu = await runOn('cpu', () => productAndGrads(aShape, bShape, tA, tB));
      const { outs, calls } = await runOnBlas(() => productAndGrads(aShape, bShape, tA, tB));
      expect(calls).toBeGreaterThanOrEqual(3); // forward, dA, dB (twice the forward: tf.grads reruns it)
      expectSameOutputs(cpu, outs, 1e-5);
    });

    it('broadcasts batch dims both ways ([2,1]·[1,3]), as an explicit tile does', async () => {
      // cpu gets this broadcast wrong (it assumes one side has batch 1): the reference tiles both sides.
      const aVals = randomValues(11, [2, 1, 12, 10]);
      const bVals = randomValues(12, [1, 3, 10, 14]);
      const run = (tile: boolean) => (): tf.Tensor[] => {
        const a = tf.tensor(aVals, [2, 1, 12, 10]);
        const b = tf.tensor(bVals, [1, 3, 10, 14]);
        const f = (p: tf.Tensor, q: tf.Tensor): tf.Tensor =>
          (tile ? tf.matMul(tf.tile(p, [1, 3, 1, 1]), tf.tile(q, [2, 1, 1, 1])) : tf.matMul(p, q));
        const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(f(p, q))))([a, b]);
        return [f(a, b), ga!, gb!];
      };
      const ref = await runOn('cpu', run(true));
      const { outs, calls } = await runOnBlas(run(false));
      expect(outs[0]!.length).toBe(2 * 3 * 12 * 14);
      expect(calls).toBeGreaterThanOrEqual(6); // one call per output batch entry
      expectSameOutputs(ref, outs, 1e-5);
    });

    it('pins a hand-computed transposed product', async () => {
      // aᵀ·bᵀ on small integers (exact in float32); 8×8×8 multiply-adds, enough to reach BLAS.
      const a = Array.from({ length: 64 }, (_, i) => (i % 5) - 2);
      const b = Array.from({ length: 64 }, (_, i) => (i % 3) - 1);
      const { outs, calls } = await runOnBlas(() => tf.matMul(tf.tensor2d(a, [8, 8]), tf.tensor2d(b, [8, 8]), true, true));
      expect(calls).toBe(1);
      // out[i][j] = Σ_t a[t][i] · b[j][t]
      const expected = Array.from({ length: 64 }, (_, idx) => {
        const i = Math.floor(idx / 8);
        const j = idx % 8;
        let s = 0;
        for (let t = 0; t < 8; t++) s += a[t * 8 + i]! * b[j * 8 + t]!;
        return s;
      });
      expect(Array.from(outs[0]!)).toEqual(expected);
    });

    it('gives more than one thread only to products big and wide enough to pay for it', () => {
      expect(blasThreadsFor(16, 4096, 288, 2)).toBe(2); // small model's LM head while decoding
      expect(blasThreadsFor(2048, 768, 288, 4)).toBe(4); // small model's MLP in training
      expect(blasThreadsFor(16, 512, 128, 2)).toBe(1); // tiny model: 128-wide
      expect(blasThreadsFor(2048, 8, 288, 2)).toBe(1); // LoRA rank 8
      expect(blasThreadsFor(256, 256, 48, 2)).toBe(1); // attention, one head
      expect(blasThreadsFor(8, 576, 576, 2)).toBe(1); // too few rows for a B that stays in cache
      expect(blasThreadsFor(8, 49152, 576, 2)).toBe(2); // decoding's LM head: B streamed from memory
      expect(blasThreadsFor(16, 300, 300, 2)).toBe(1); // too little work (1.4M)
      expect(blasThreadsFor(16, 4096, 288, 1)).toBe(1);
    });

    it('threaded and single-threaded products agree', async () => {
      await initEngine({ backend: 'wasm', blasThreads: 2 });
      const a = tf.tensor(randomValues(3, [64, 512]), [64, 512]);
      const b = tf.tensor(randomValues(4, [512, 384]), [512, 384]);
      expect(blasThreadsFor(64, 384, 512, 2)).toBe(2);
      const two = tf.matMul(a, b);
      await initEngine({ backend: 'wasm', blasThreads: 1 });
      const one = tf.matMul(a, b);
      const d = tf.max(tf.abs(tf.sub(two, one))).dataSync()[0]!;
      expect(d).toBeLessThan(1e-4);
      tf.dispose([a, b, one, two]);
      await initEngine({ backend: 'wasm' });
    });

    it('takes a thread count and leaks no tensor or wasm buffer', async () => {
      const defaultThreads = found.library?.getThreads?.() ?? 1;
      const info = await initEngine({ backend: 'wasm', blas: 'auto', blasThreads: 1 });
      expect(info.matmul).toMatchObject({ path: 'blas', threads: 1 });
      expect(info.patchedKernels.find((k) => k.name === 'BatchMatMul')?.reason).toContain('sgemm');
      const a = tf.tensor(randomValues(1, [2, 40, 30]), [2, 40, 30]);
      const b = tf.tensor(randomValues(2, [2, 50, 30]), [2, 50, 30]);
      const before = tf.memory().numTensors;
      const buffers = tf.engine().backend.numDataIds();
      for (let i = 0; i < 3; i++) {
        tf.tidy(() => {
          tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.matMul(p, q, false, true)))([a, b]);
        });
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(tf.engine().backend.numDataIds()).toBe(buffers);
      tf.dispose([a, b]);
      await initEngine({ backend: 'wasm', blasThreads: defaultThreads });
    });

    it('runs DEFAULT_BLAS_THREADS (the cores, at most 4) unless told otherwise', async () => {
      const saved = process.env['RLHF_BLAS_THREADS'];
      delete process.env['RLHF_BLAS_THREADS'];
      try {
        expect(DEFAULT_BLAS_THREADS).toBe(Math.min(4, availableParallelism()));
        expect((await configureBlas('auto')).threads).toBe(DEFAULT_BLAS_THREADS);
        process.env['RLHF_BLAS_THREADS'] = '2';
        expect((await configureBlas('auto')).threads).toBe(2);
      } finally {
        if (saved === undefined) delete process.env['RLHF_BLAS_THREADS'];
        else process.env['RLHF_BLAS_THREADS'] = saved;
        await configureBlas('auto');
      }
    });
  });

  describe('Transpose and operand addresses on the BLAS path', () => {
    it('swaps the last two axes with somatcopy (2-D weight, batched), other perms stay stock; matches cpu', async () => {
      const fn = () => {
        const w = tf.tensor(randomValues(1, [96, 72]), [96, 72]);
        const batched = tf.tensor(randomValues(2, [3, 80, 64]), [3, 80, 64]);
        const small = tf.tensor(randomValues(3, [5, 7]), [5, 7]);
        const heads = tf.tensor(randomValues(4, [2, 70, 3, 40]), [2, 70, 3, 40]);
        return [tf.transpose(w), tf.transpose(batched, [0, 2, 1]), tf.transpose(small), tf.transpose(heads, [0, 2, 1, 3])];
      };
      const cpu = await runOn('cpu', fn);
      await initEngine({ backend: 'wasm', blas: 'auto' });
      const lib = activeBlas()!;
      expect(lib.transpose).not.toBeNull();
      const transpose = lib.transpose!;
      let calls = 0;
      lib.transpose = (...args) => { calls++; transpose(...args); };
      try {
        const wasm = await runOn('wasm', fn);
        expect(calls).toBe(1 + 3); // the weight, and one per batch entry; the small and the 4-D ones are stock
        cpu.forEach((ref, i) => expect(Array.from(wasm[i]!)).toEqual(Array.from(ref)));
      } finally {
        lib.transpose = transpose;
      }
    });

    it('batched products pass heap addresses to sgemm, with the same results as typed-array views', async () => {
      const fn = () => tf.matMul(tf.tensor(randomValues(5, [4, 3, 24]), [4, 3, 24]), tf.tensor(randomValues(6, [4, 30, 24]), [4, 30, 24]), false, true);
      const viaAddresses = await runOnBlas(fn);
      const lib = activeBlas()!;
      const addressOf = lib.addressOf;
      expect(addressOf).not.toBeNull();
      lib.addressOf = null;
      try {
        const viaViews = await runOnBlas(fn);
        expect(viaAddresses.calls).toBe(4);
        expect(Array.from(viaAddresses.outs[0]!)).toEqual(Array.from(viaViews.outs[0]!));
      } finally {
        lib.addressOf = addressOf;
      }
    });
  });
  });
}

describe('BLAS fallback to wasm', () => {
  afterEach(() => {
    delete process.env['RLHF_BLAS'];
  });
  afterAll(async () => {
    await initEngine({ backend: 'wasm' });
  });

  it('engine.blas off keeps the wasm path, and its products still match cpu', async () => {
    const info = await initEngine({ backend: 'wasm', blas: 'off' });
    expect(info.matmul).toEqual({ path: 'wasm', vendor: null, library: null, threads: null, reason: 'engine.blas is off' });
    expect(activeBlas()).toBeNull();
    const cpu = await runOn('cpu', () => productAndGrads([2, 24, 16], [2, 20, 16], false, true));
    await initEngine({ backend: 'wasm', blas: 'off' });
    const outs = tf.tidy(() => productAndGrads([2, 24, 16], [2, 20, 16], false, true)).map((t) => {
      const v = Float32Array.from(t.dataSync());
      t.dispose();
      return v;
    });
    expectSameOutputs(cpu, outs, 1e-5);
  });

  it('RLHF_BLAS=off in the environment wins over auto', async () => {
    process.env['RLHF_BLAS'] = 'off';
    const info = await initEngine({ backend: 'wasm' });
    expect(info.matmul?.path).toBe('wasm');
    expect(info.matmul?.reason).toBe('RLHF_BLAS=off in the environment');
  });

  it('rejects a bad mode or thread count with the key named', async () => {
    await expect(configureBlas('on' as never)).rejects.toThrow("engine.blas: expected auto | off, got 'on'");
    if (lookup.library !== null) {
      await expect(configureBlas('auto', 0)).rejects.toThrow('engine.blasThreads: expected a positive integer, got 0');
    }
  });

  it('is not on the cpu backend', async () => {
    expect((await initEngine({ backend: 'cpu' })).matmul).toBeNull();
  });
});

describe('blasCandidates', () => {
  it('looks in the Debian multiarch OpenBLAS folders first on Linux, never generic libblas', () => {
    const paths = blasCandidates('linux', 'x64').map((c) => c.path);
    expect(paths[0]).toBe('/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0');
    expect(paths.every((p) => p.includes('openblas'))).toBe(true);
    expect(blasCandidates('linux', 'arm64')[0]!.path).toBe('/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0');
  });

  it('falls back to Accelerate on macOS and finds nothing on Windows', () => {
    const mac = blasCandidates('darwin', 'arm64');
    expect(mac[mac.length - 1]).toEqual({ vendor: 'accelerate', path: '/System/Library/Frameworks/Accelerate.framework/Accelerate' });
    expect(blasCandidates('win32', 'x64')).toEqual([]);
  });
});
