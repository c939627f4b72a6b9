import { existsSync } from 'node:fs';
import { packagePath } from '../../paths.js';

/**
 * A GEMM library reached through `koffi` (an FFI whose prebuilt binaries ship inside npm), so the
 * setup stays `npm install`: rlhf-kit's own GEMM (`native/gemm.c`, compiled for this CPU by the
 * package's install script), or a system OpenBLAS (Debian `libopenblas0-pthread`) or Accelerate
 * (macOS). Only single-precision GEMM (and a transpose) is bound — what the matmul kernel needs.
 */

export type BlasVendor = 'openblas' | 'accelerate' | 'rlhf-kit';

/**
 * `C[m,n] = op(A)·op(B)` on row-major float32 arrays (alpha 1, beta 0); `ld*` are row strides.
 * Operands are typed arrays, or native addresses (numbers, from `BlasLibrary.addressOf`): passing
 * an address skips making a typed-array view per operand, which matters for the thousands of tiny
 * per-head products of a decode step. All three operands must be of the same kind.
 */
export type Sgemm = (
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array | number, lda: number, b: Float32Array | number, ldb: number, c: Float32Array | number, ldc: number,
) => void;

export interface BlasLibrary {
  vendor: BlasVendor;
  /** The file that was loaded. */
  path: string;
  sgemm: Sgemm;
  /** Set the library's compute threads; null where it has no such call (Accelerate). */
  setThreads: ((n: number) => void) | null;
  /** The library's current thread count; null where it cannot say (Accelerate). */
  getThreads: (() => number) | null;
  /**
   * Native address of a buffer's first byte, for `sgemm` operands given as addresses; null where
   * the C library could not be bound. Valid while the buffer lives and is not detached (a wasm
   * heap's buffer is replaced when the memory grows: ask again for the new one).
   */
  addressOf: ((buffer: ArrayBuffer) => number) | null;
  /**
   * `B[cols, rows] = Aᵀ` for a row-major float32 A [rows, cols] (OpenBLAS `cblas_somatcopy`,
   * 10–20× the wasm Transpose kernel on weight-sized matrices); null where the library has none.
   */
  transpose: ((rows: number, cols: number, a: Float32Array, b: Float32Array) => void) | null;
  /**
   * `sgemm` with B given as bfloat16 bits in JS memory (a frozen weight off the wasm heap), A and C
   * as native addresses; each value is upcast as B is packed. Null where the library has none
   * (only rlhf-kit's own GEMM does).
   */
  sgemmBf16B: ((
    transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: number, lda: number, b: Uint16Array, ldb: number, c: number, ldc: number,
  ) => void) | null;
}

/** rlhf-kit's own GEMM, where `npm install` built it (`scripts/build-native.mjs`). */
export function bundledGemmPath(platform: NodeJS.Platform = process.platform): string {
  return packagePath('build', 'native', platform === 'darwin' ? 'librlhf_gemm.dylib' : 'librlhf_gemm.so');
}

/** Where to look for a system BLAS, in order. A generic `libblas.so.3` is never taken: on Debian it may be reference BLAS. */
export function blasCandidates(platform: NodeJS.Platform = process.platform, arch: string = process.arch): { vendor: BlasVendor; path: string }[] {
  const openblas = (path: string): { vendor: BlasVendor; path: string } => ({ vendor: 'openblas', path });
  if (platform === 'darwin') {
    return [
      openblas('/opt/homebrew/opt/openblas/lib/libopenblas.dylib'),
      openblas('/usr/local/opt/openblas/lib/libopenblas.dylib'),
      { vendor: 'accelerate', path: '/System/Library/Frameworks/Accelerate.framework/Accelerate' },
    ];
  }
  if (platform !== 'linux') return [];
  const triple = arch === 'arm64' ? 'aarch64-linux-gnu' : arch === 'x64' ? 'x86_64-linux-gnu' : null;
  const debian = triple === null ? [] : [
    `/usr/lib/${triple}/openblas-pthread/libopenblas.so.0`,
    `/usr/lib/${triple}/openblas-openmp/libopenblas.so.0`,
    `/usr/lib/${triple}/libopenblas.so.0`,
  ];
  // Fedora/RHEL (lib64), Arch and source installs (lib).
  return [...debian, '/usr/lib64/libopenblas.so.0', '/usr/lib/libopenblas.so.0', '/usr/local/lib/libopenblas.so.0']
    .map(openblas);
}

// CBLAS enum values (cblas.h).
/**
 * Products below this many multiply-adds (m·n·k), under 16 rows (unless B is streamed from memory), or with an inner or output side
 * under THREADED_MIN_SIDE (LoRA's rank-8 products, the tiny model's 128-wide ones, attention's
 * per-head products) run on one thread even when more are allowed. Measured on the idle 2-core
 * bench machine, two threads on every product made tiny-model decoding 7–27% slower, tiny full
 * training 18% slower and small-model LoRA training 10% slower; with this gate the tiny rows stay
 * within noise of one thread while the small model gains 25% (training) and 17% (decoding).
 */
export const THREADED_MIN_WORK = 2 ** 21;
export const THREADED_MIN_SIDE = 256;
/**
 * Under 16 rows (decoding), a product still gets more than one thread when B has at least this many
 * values (4 MiB of float32, more than a core's L2): it then streams B from memory, which one core
 * cannot do at the machine's bandwidth. 135M-shape greedy decoding at batch 8 ran 10-20 % faster
 * with it (three A/B pairs, rlhf-kit's GEMM).
 */
export const THREADED_MIN_STREAMED = 2 ** 20;

/** Threads for one [m, k]·[k, n] product when up to `maxThreads` are allowed. */
export function blasThreadsFor(m: number, n: number, k: number, maxThreads: number): number {
  const enoughRows = m >= 16 || n * k >= THREADED_MIN_STREAMED;
  return maxThreads > 1 && m * n * k >= THREADED_MIN_WORK && enoughRows && Math.min(n, k) >= THREADED_MIN_SIDE ? maxThreads : 1;
}

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

type KoffiModule = (typeof import('koffi'))['default'];

/** Result of looking for a BLAS: the library, or why there is none (for `rlhf env`). */
export type BlasLookup = { library: BlasLibrary; reason: null } | { library: null; reason: string };

/** Which libraries `loadBlas` may take: `system` (OpenBLAS/Accelerate), `bundled` (rlhf-kit's own), or either. */
export type BlasSource = 'any' | 'system' | 'bundled';

const cached = new Map<BlasSource, Promise<BlasLookup>>();

/**
 * Find and bind the first library that loads; memoised (a shared library loads once per process).
 * rlhf-kit's own GEMM comes first: built at install for this very CPU, it ran 1.3-2x the GFLOP/s of
 * Debian's OpenBLAS 0.3.21 on the products of training (single thread, AMD EPYC with AVX-512, where
 * OpenBLAS takes its Haswell kernels) and a 135M-shape LoRA step 1.4x faster. A system OpenBLAS or
 * Accelerate is next (no compiler at install), then nothing (wasm). `RLHF_BLAS_LIB=/path/lib.so` puts
 * a library of the user's own first; `RLHF_BLAS=system|bundled` takes only one kind.
 */
export function loadBlas(source: BlasSource = 'any'): Promise<BlasLookup> {
  let lookup = cached.get(source);
  if (lookup === undefined) {
    lookup = findBlas(source);
    cached.set(source, lookup);
  }
  return lookup;
}

interface Candidate { vendor: BlasVendor; path: string }

async function findBlas(source: BlasSource): Promise<BlasLookup> {
  let koffi: KoffiModule;
  try {
    koffi = (await import('koffi')).default;
  } catch (e) {
    return { library: null, reason: `koffi (the FFI) did not load on ${process.platform}-${process.arch}: ${(e as Error).message}` };
  }
  const own = process.env['RLHF_BLAS_LIB'];
  const system: Candidate[] = own !== undefined && own !== '' && source !== 'bundled'
    ? [{ vendor: own.includes('Accelerate') ? 'accelerate' : 'openblas', path: own }, ...blasCandidates()]
    : blasCandidates();
  const bundled: Candidate = { vendor: 'rlhf-kit', path: bundledGemmPath() };
  const ownFirst = own !== undefined && own !== '' ? system.slice(0, 1) : [];
  const candidates = source === 'system' ? system : source === 'bundled' ? [bundled]
    : [...ownFirst, bundled, ...system.slice(ownFirst.length)];
  const failures: string[] = [];
  for (const { vendor, path } of candidates) {
    if (!existsSync(path)) continue;
    try {
      return { library: vendor === 'rlhf-kit' ? bindBundled(koffi, path) : bind(koffi, vendor, path), reason: null };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  const hint = process.platform === 'linux' ? ' (Debian/Ubuntu: apt-get install libopenblas0-pthread)' : '';
  const missing = source === 'bundled' ? `rlhf-kit's GEMM is not built (${bundled.path}; \`npm run install\` in the rlhf-kit folder builds it with a C compiler)`
    : source === 'system' ? `no OpenBLAS/Accelerate found${hint}`
    : `no OpenBLAS/Accelerate found${hint}, and rlhf-kit's own GEMM is not built (no C compiler at npm install?)`;
  return { library: null, reason: failures.length > 0 ? `no BLAS loaded: ${failures.join('; ')}` : missing };
}

/**
 * rlhf-kit's own GEMM (`native/gemm.c`): the same calls as OpenBLAS's, under its own names. It
 * splits a product over OpenMP threads itself; the size gate (`blasThreadsFor`) still decides how many.
 */
/**
 * Size-aware threading over a library's thread setter: more than one thread only for products big
 * enough to pay for the hand-off (see THREADED_MIN_WORK); the count is switched only when it changes.
 */
function threadGate(setNum: (n: number) => void): { before: (m: number, n: number, k: number) => void; setThreads: (n: number) => void; getThreads: () => number } {
  let maxThreads = 1;
  let current = -1;
  return {
    before: (m, n, k) => {
      const want = blasThreadsFor(m, n, k, maxThreads);
      if (want !== current) {
        setNum(want);
        current = want;
      }
    },
    setThreads: (n) => {
      maxThreads = n;
      setNum(n); // creates the pool up front
      current = n;
    },
    getThreads: () => maxThreads,
  };
}

function bindBundled(koffi: KoffiModule, path: string): BlasLibrary {
  // Idle OpenMP threads sleep at once instead of spinning: on a machine whose cores are busy with
  // other work, spinning threads took whole scheduler slices from the thread they wait for (small
  // products 5-30x slower in a measured A/B); read by libgomp when it loads, so set before.
  if (process.env['OMP_WAIT_POLICY'] === undefined && process.env['GOMP_SPINCOUNT'] === undefined) {
    process.env['OMP_WAIT_POLICY'] = 'passive';
  }
  const lib = koffi.load(path);
  const gemm = lib.func('int rlhf_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, ' +
    'const float *b, int ldb, float *c, int ldc)') as (...args: unknown[]) => number;
  const gemmAt = lib.func('int rlhf_sgemm(int ta, int tb, int m, int n, int k, uintptr_t a, int lda, ' +
    'uintptr_t b, int ldb, uintptr_t c, int ldc)') as (...args: unknown[]) => number;
  const gemmBf16 = lib.func('int rlhf_sgemm_bf16b(int ta, int tb, int m, int n, int k, uintptr_t a, int lda, ' +
    'const uint16_t *b, int ldb, uintptr_t c, int ldc)') as (...args: unknown[]) => number;
  const setNum = lib.func('void rlhf_gemm_set_threads(int n)') as (n: number) => void;
  const transposeFn = lib.func('void rlhf_transpose(int rows, int cols, const float *a, float *b)') as
    (rows: number, cols: number, a: Float32Array, b: Float32Array) => void;
  const gate = threadGate(setNum);
  // Its only failure: no memory for the packed operands (a few MiB at most).
  const check = (status: number, m: number, n: number, k: number): void => {
    if (status !== 0) throw new Error(`rlhf-kit GEMM: out of memory packing a [${m}, ${k}]·[${k}, ${n}] product`);
  };
  const sgemm: Sgemm = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) => {
    gate.before(m, n, k);
    check((typeof a === 'number' ? gemmAt : gemm)(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, c, ldc), m, n, k);
  };
  const sgemmBf16B: BlasLibrary['sgemmBf16B'] = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) => {
    gate.before(m, n, k);
    check(gemmBf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, c, ldc), m, n, k);
  };
  return {
    vendor: 'rlhf-kit', path, sgemm,
    setThreads: gate.setThreads,
    getThreads: gate.getThreads,
    addressOf: bindAddressOf(koffi),
    transpose: (rows, cols, a, b) => transposeFn(rows, cols, a, b),
    sgemmBf16B,
  };
}

function bind(koffi: KoffiModule, vendor: BlasVendor, path: string): BlasLibrary {
  const lib = koffi.load(path);
  // blasint is 32-bit in the distribution builds (the ILP64 ones are named libopenblas64_).
  const cblasSgemm = lib.func(
    'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, ' +
    'const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)',
  ) as (...args: unknown[]) => void;
  // The same entry point taking addresses as integers.
  const cblasSgemmAt = lib.func(
    'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, ' +
    'uintptr_t a, int lda, uintptr_t b, int ldb, float beta, uintptr_t c, int ldc)',
  ) as (...args: unknown[]) => void;
  // Typed arrays go to C as pointers to their own bytes (no copy), valid for the call's duration.
  const sgemm: Sgemm = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =>
    (typeof a === 'number' ? cblasSgemmAt : cblasSgemm)(
      ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
  const addressOf = bindAddressOf(koffi);
  if (vendor === 'accelerate') return { vendor, path, sgemm, setThreads: null, getThreads: null, addressOf, transpose: null, sgemmBf16B: null };
  const setNum = lib.func('void openblas_set_num_threads(int n)') as (n: number) => void;
  const gate = threadGate(setNum);
  const threadedSgemm: Sgemm = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) => {
    gate.before(m, n, k);
    sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
  };
  let transpose: BlasLibrary['transpose'] = null;
  try {
    const omatcopy = lib.func(
      'void cblas_somatcopy(int order, int trans, int rows, int cols, float alpha, const float *a, int lda, float *b, int ldb)',
    ) as (...args: unknown[]) => void;
    transpose = (rows, cols, a, b) => omatcopy(ROW_MAJOR, TRANS, rows, cols, 1, a, cols, b, rows);
  } catch {
    // an OpenBLAS without the extension: the wasm Transpose kernel stays
  }
  return { vendor, path, sgemm: threadedSgemm, setThreads: gate.setThreads, getThreads: gate.getThreads, addressOf, transpose, sgemmBf16B: null };
}

/**
 * A buffer's native address, read back through the C library: `memmove(p, p, 0)` copies nothing
 * and returns p. Null where libc cannot be bound (then `sgemm` gets typed arrays).
 */
function bindAddressOf(koffi: KoffiModule): ((buffer: ArrayBuffer) => number) | null {
  const libc = process.platform === 'darwin' ? '/usr/lib/libSystem.B.dylib' : process.platform === 'linux' ? 'libc.so.6' : null;
  if (libc === null) return null;
  try {
    const memmove = koffi.load(libc).func('uintptr_t memmove(void *dst, const void *src, size_t n)') as
      (dst: Uint8Array, src: Uint8Array, n: number) => number | bigint;
    return (buffer) => {
      const view = new Uint8Array(buffer, 0, Math.min(1, buffer.byteLength));
      const at = memmove(view, view, 0);
      if (typeof at !== 'number') throw new Error('rlhf-kit: buffer address beyond 2^53');
      return at;
    };
  } catch {
    return null;
  }
}
