/**
 * rlhf-kit's own GEMM (native/gemm.c, built by `npm install`'s install script): every transpose
 * combination on shapes that cross its blocking (several depth blocks, column tiles, edge strips,
 * the unpacked small-product path), on one and two threads, against a float64 reference; then the
 * wasm BatchMatMul on it against the cpu backend. CI builds it (`npm ci`), so there a missing
 * library fails; elsewhere (no C compiler) these cases are skipped under a title that says so.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { bundledGemmPath, loadBlas, matmulNote, type BlasLibrary } from '../../src/engine/blas/index.js';
import { initEngine } from '../../src/engine/index.js';
import { packagePath } from '../../src/paths.js';
import { FrozenWeight, frozenMatMulT } from '../../src/model/frozen.js';
import { expectSameOutputs, randomValues, runOn } from '../helpers/engine.js';

const lookup = await loadBlas('bundled');
const built = lookup.library !== null;
const describeBuilt = built ? describe : describe.skip;

/** C = op(A)·op(B) in float64, from row-major storage. */
function reference(ta: boolean, tb: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = ta ? a[p * m + i]! : a[i * k + p]!;
      for (let j = 0; j < n; j++) c[i * n + j]! += av * (tb ? b[j * k + p]! : b[p * n + j]!);
    }
  }
  return c;
}

function normwiseError(got: Float32Array, want: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i]! - want[i]!) ** 2;
    den += want[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

// [m, n, k]: small (unpacked), one block with edges, depth > 256 (several depth blocks), columns >
// 1024 (several column tiles), a decode-like 8-row product, and a single row.
const SHAPES: [number, number, number][] = [[5, 9, 7], [37, 70, 300], [130, 1100, 257], [8, 576, 160], [1, 300, 200], [66, 40, 600]];
const FLAGS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

describe('the install script', () => {
  it('builds the library, or (e.g. without a compiler) says it did not and still exits 0', () => {
    const failed = spawnSync(process.execPath, [packagePath('scripts', 'build-native.mjs')], {
      encoding: 'utf8', env: { ...process.env, CC: '/nonexistent/cc' },
    });
    expect(failed.status).toBe(0);
    expect(failed.stdout).toContain('rlhf-kit: native GEMM not built');
    expect(existsSync(`${bundledGemmPath()}.partial`)).toBe(false);
  });

  it('was built by npm install where a C compiler is present (CI)', () => {
    const compiler = spawnSync('cc', ['--version']).status === 0;
    if (process.env['CI'] !== undefined && compiler) expect(lookup.reason).toBeNull();
    if (!built) console.warn(`test/engine/gemm.test.ts: bundled GEMM cases skipped: ${lookup.reason}`);
    expect(built || lookup.reason !== null).toBe(true);
  });
});

describeBuilt(built ? `rlhf-kit's GEMM (${bundledGemmPath()})` : `SKIPPED — rlhf-kit's GEMM: ${lookup.reason}`, () => {
  const lib = lookup.library as BlasLibrary;

  afterAll(() => lib.setThreads?.(1));

  it.each(SHAPES.flatMap(([m, n, k]) => FLAGS.flatMap(([ta, tb]) => [1, 2].map((t) => [m, n, k, ta, tb, t] as const))))(
    '[%i, %i, %i] transA=%s transB=%s on %i thread(s) matches float64',
    (m, n, k, ta, tb, threads) => {
      lib.setThreads!(threads);
      const a = Float32Array.from(randomValues(m * 31 + k, [m * k]));
      const b = Float32Array.from(randomValues(n * 17 + k, [k * n]));
      const c = new Float32Array(m * n).fill(Number.NaN); // beta 0: nothing of C is read
      lib.sgemm(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n);
      expect(normwiseError(c, reference(ta, tb, m, n, k, a, b))).toBeLessThan(1e-6);
    },
  );

  // Decoding multiplies up to 8 rows (gemm_few: no block packing); training many. A row's values must
  // not depend on which path ran it. (Under 4 rows with B untransposed, the plain loop runs instead.)
  it.each(FLAGS.flatMap(([ta, tb]) => [4, 8].map((m) => [m, ta, tb] as const)))(
    'a %i-row product (transA=%s transB=%s) equals, bit for bit, the same rows inside a 20-row one',
    (m, ta, tb) => {
      const [big, n, k] = [20, 1100, 600]; // several depth blocks, an edge column panel
      const aBig = Float32Array.from(randomValues(21, [big * k])); // op(A) [big, k]
      const b = Float32Array.from(randomValues(22, [k * n]));
      const aFew = new Float32Array(m * k);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) aFew[ta ? p * m + i : i * k + p] = aBig[ta ? p * big + i : i * k + p]!;
      const cBig = new Float32Array(big * n);
      const cFew = new Float32Array(m * n);
      lib.sgemm(ta, tb, big, n, k, aBig, ta ? big : k, b, tb ? k : n, cBig, n);
      lib.sgemm(ta, tb, m, n, k, aFew, ta ? m : k, b, tb ? k : n, cFew, n);
      expect(Array.from(cFew)).toEqual(Array.from(cBig.subarray(0, m * n)));
    },
  );

  it('writes only inside ldc: a C wider than n keeps its other columns', () => {
    const [m, n, k, ldc] = [40, 50, 300, 64];
    const a = Float32Array.from(randomValues(1, [m * k]));
    const b = Float32Array.from(randomValues(2, [k * n]));
    const c = new Float32Array(m * ldc).fill(7);
    lib.sgemm(false, false, m, n, k, a, k, b, n, c, ldc);
    const want = reference(false, false, m, n, k, a, b);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < ldc; j++) {
        if (j < n) expect(Math.abs(c[i * ldc + j]! - want[i * n + j]!)).toBeLessThan(1e-4);
        else expect(c[i * ldc + j]).toBe(7);
      }
    }
  });

  it('is the library RLHF_BLAS=auto takes first, before a system OpenBLAS', async () => {
    expect((await loadBlas()).library?.vendor).toBe('rlhf-kit');
  });

  it('transposes a weight-sized matrix exactly', () => {
    const [rows, cols] = [70, 45];
    const a = Float32Array.from(randomValues(3, [rows * cols]));
    const out = new Float32Array(rows * cols);
    lib.transpose!(rows, cols, a, out);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expect(out[j * rows + i]).toBe(a[i * cols + j]);
  });

  it.each([[false, 3, 40, 300], [true, 3, 40, 300], [false, 70, 1100, 260], [true, 70, 1100, 260]] as const)(
    'multiplies by a bfloat16 B straight from its bits (transB=%s, [%i, %i, %i]) as by its float32 upcast',
    (tb, m, n, k) => {
      const bf = FrozenWeight.fromFloat32(Float32Array.from(randomValues(5, [k * n])), tb ? [n, k] : [k, n]);
      const upcast = new Float32Array(bf.bits.length);
      new Uint32Array(upcast.buffer).set(Array.from(bf.bits, (b) => b << 16));
      const a = Float32Array.from(randomValues(6, [m * k]));
      // A and C by address: copy them into one native-visible buffer (a wasm-heap stand-in).
      const buffer = new ArrayBuffer(4 * (m * k + m * n));
      const view = new Float32Array(buffer);
      view.set(a);
      const at = lib.addressOf!(buffer);
      lib.sgemmBf16B!(false, tb, m, n, k, at, k, bf.bits, tb ? k : n, at + 4 * m * k, n);
      const got = view.slice(m * k);
      expect(normwiseError(got, reference(false, tb, m, n, k, a, upcast))).toBeLessThan(1e-6);
    },
  );

  it('frozen bfloat16 projections (values and gradients) take the bits path on wasm and match the upcast path', async () => {
    const w = FrozenWeight.fromFloat32(Float32Array.from(randomValues(11, [96 * 80])), [96, 80]); // [out, in]
    const xVals = randomValues(12, [2, 9, 80]);
    const gVals = randomValues(13, [2, 9, 96]);
    const run = (): Float32Array[] => {
      const x = tf.tensor(xVals, [2, 9, 80]);
      const g = tf.tensor(gVals, [2, 9, 96]);
      const { value, grads } = tf.valueAndGrads((p: tf.Tensor) => tf.sum(tf.mul(frozenMatMulT(p, w), g)))([x]);
      const outs = [tf.tidy(() => frozenMatMulT(x, w)), grads[0]!];
      const values = outs.map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([x, g, value, ...outs]);
      return values;
    };
    await initEngine({ backend: 'wasm', blas: 'off' }); // the upcast path
    const upcast = run();
    process.env['RLHF_BLAS'] = 'bundled';
    try {
      await initEngine({ backend: 'wasm' });
      const active = (await loadBlas('bundled')).library!;
      const direct = active.sgemmBf16B!;
      let calls = 0;
      active.sgemmBf16B = (...args) => { calls++; direct(...args); };
      const before = tf.memory().numTensors;
      try {
        const bits = run();
        expect(calls).toBe(3); // forward twice (valueAndGrads, then alone) and dx once
        expect(tf.memory().numTensors).toBe(before);
        expectSameOutputs(upcast, bits, 1e-6);
      } finally {
        active.sgemmBf16B = direct;
      }
    } finally {
      delete process.env['RLHF_BLAS'];
      await initEngine({ backend: 'wasm' });
    }
  });

  it('runs the wasm BatchMatMul (values and gradients) when RLHF_BLAS=bundled, matching cpu', async () => {
    const fn = (): tf.Tensor[] => {
      const x = tf.tensor(randomValues(7, [2, 40, 96]), [2, 40, 96]);
      const w = tf.tensor(randomValues(8, [300, 96]), [300, 96]);
      const g = tf.tensor(randomValues(9, [2, 40, 300]), [2, 40, 300]);
      const [dx, dw] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, false, true), g)))([x, w]);
      return [tf.matMul(x, w, false, true), dx!, dw!];
    };
    const cpu = await runOn('cpu', fn);
    process.env['RLHF_BLAS'] = 'bundled';
    try {
      const info = await initEngine({ backend: 'wasm' });
      expect(info.matmul).toMatchObject({ path: 'blas', vendor: 'rlhf-kit', library: bundledGemmPath() });
      const before = tf.memory().numTensors;
      const outs = tf.tidy(fn);
      const values = outs.map((t) => Float32Array.from(t.dataSync()));
      tf.dispose(outs);
      expect(tf.memory().numTensors).toBe(before);
      expectSameOutputs(cpu, values, 1e-5);
    } finally {
      delete process.env['RLHF_BLAS'];
      await initEngine({ backend: 'wasm' });
    }
  });
});

describe('RLHF_BLAS', () => {
  afterEach(() => {
    delete process.env['RLHF_BLAS'];
  });

  it('rejects a value it does not know, naming the choices', async () => {
    process.env['RLHF_BLAS'] = 'fastest';
    await expect(initEngine({ backend: 'wasm' })).rejects.toThrow("RLHF_BLAS: expected auto | system | bundled | off, got 'fastest'");
    delete process.env['RLHF_BLAS'];
    await initEngine({ backend: 'wasm' });
  });
});

describe('the matmul line at the top of rlhf pipeline', () => {
  it('names the library, or says how to get a native one when only wasm is left', () => {
    const lib = { vendor: 'rlhf-kit', path: '/p/librlhf_gemm.so' } as BlasLibrary;
    expect(matmulNote({ library: lib, reason: null }, 2)).toBe("matmuls: rlhf-kit's own GEMM (built at npm install), up to 2 threads");
    const none = matmulNote({ library: null, reason: 'no OpenBLAS/Accelerate found' }, 2, 'linux');
    expect(none).toContain('single-threaded wasm kernels (no OpenBLAS/Accelerate found)');
    expect(none).toContain('`apt-get install gcc && npm run install` in the rlhf-kit folder');
    expect(none).toContain('`apt-get install libopenblas0-pthread`');
  });
});
