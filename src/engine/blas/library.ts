import { existsSync } from 'node:fs';

/**
 * A system BLAS reached through `koffi` (an FFI whose prebuilt binaries ship inside npm), so the
 * setup stays `npm install`: OpenBLAS on Linux (Debian `libopenblas0-pthread`), OpenBLAS or
 * Accelerate on macOS. Only single-precision GEMM is bound — the one routine the matmul kernel needs.
 */

export type BlasVendor = 'openblas' | 'accelerate';

/** `C[m,n] = op(A)·op(B)` on row-major float32 arrays (alpha 1, beta 0); `ld*` are row strides. */
export type Sgemm = (
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number, c: Float32Array, ldc: number,
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
}

/** Where to look, in order. A generic `libblas.so.3` is never taken: on Debian it may be reference BLAS. */
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
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

type KoffiModule = (typeof import('koffi'))['default'];

/** Result of looking for a BLAS: the library, or why there is none (for `rlhf env`). */
export type BlasLookup = { library: BlasLibrary; reason: null } | { library: null; reason: string };

let cached: Promise<BlasLookup> | null = null;

/**
 * Find and bind the first BLAS that loads; memoised (a shared library loads once per process).
 * `RLHF_BLAS_LIB=/path/libopenblas.so` puts a library of the user's own first.
 */
export function loadBlas(): Promise<BlasLookup> {
  cached ??= findBlas();
  return cached;
}

async function findBlas(): Promise<BlasLookup> {
  let koffi: KoffiModule;
  try {
    koffi = (await import('koffi')).default;
  } catch (e) {
    return { library: null, reason: `koffi (the FFI) did not load on ${process.platform}-${process.arch}: ${(e as Error).message}` };
  }
  const own = process.env['RLHF_BLAS_LIB'];
  const candidates = own !== undefined && own !== ''
    ? [{ vendor: (own.includes('Accelerate') ? 'accelerate' : 'openblas') as BlasVendor, path: own }, ...blasCandidates()]
    : blasCandidates();
  const failures: string[] = [];
  for (const { vendor, path } of candidates) {
    if (!existsSync(path)) continue;
    try {
      return { library: bind(koffi, vendor, path), reason: null };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`);
    }
  }
  const hint = process.platform === 'linux' ? ' (Debian/Ubuntu: apt-get install libopenblas0-pthread)' : '';
  return {
    library: null,
    reason: failures.length > 0 ? `no BLAS loaded: ${failures.join('; ')}` : `no OpenBLAS/Accelerate found${hint}`,
  };
}

function bind(koffi: KoffiModule, vendor: BlasVendor, path: string): BlasLibrary {
  const lib = koffi.load(path);
  // blasint is 32-bit in the distribution builds (the ILP64 ones are named libopenblas64_).
  const cblasSgemm = lib.func(
    'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, ' +
    'const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)',
  ) as (...args: unknown[]) => void;
  // Typed arrays go to C as pointers to their own bytes (no copy), valid for the call's duration.
  const sgemm: Sgemm = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =>
    cblasSgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, 1, a, lda, b, ldb, 0, c, ldc);
  if (vendor === 'accelerate') return { vendor, path, sgemm, setThreads: null, getThreads: null };
  const setNum = lib.func('void openblas_set_num_threads(int n)') as (n: number) => void;
  const getNum = lib.func('int openblas_get_num_threads()') as () => number;
  return { vendor, path, sgemm, setThreads: (n) => setNum(n), getThreads: () => getNum() };
}
