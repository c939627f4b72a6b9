import { availableParallelism } from 'node:os';
import { UserError } from '../../errors.js';
import { loadBlas, type BlasLibrary, type BlasLookup, type BlasSource, type BlasVendor } from './library.js';

export { blasCandidates, blasThreadsFor, bundledGemmPath, loadBlas, type BlasSource, type BlasLibrary, type BlasLookup, type BlasVendor, type Sgemm } from './library.js';

/** `engine.blas`: `auto` uses a system BLAS for wasm matmuls when one loads; `off` never does. */
export type BlasMode = 'auto' | 'off';

/** Which path the wasm backend's BatchMatMul takes — `rlhf env` prints it. */
export interface MatMulPathInfo {
  path: 'blas' | 'wasm';
  vendor: BlasVendor | null;
  library: string | null;
  /** BLAS compute threads (null off BLAS, or where the library cannot say). */
  threads: number | null;
  /** Why the path is wasm (null on BLAS). */
  reason: string | null;
}

let active: BlasLibrary | null = null;

/** The BLAS the wasm BatchMatMul kernel should call, or null for its own wasm path. */
export function activeBlas(): BlasLibrary | null {
  return active;
}

/**
 * BLAS threads when neither `engine.blasThreads` nor `RLHF_BLAS_THREADS` says: the machine's cores,
 * at most 4 (measured on 2 cores only). Small products stay on one thread whatever this says
 * (`blasThreadsFor`): an earlier all-or-nothing setting made two threads lose on every row of a
 * loaded machine, and on tiny products even on an idle one. On the idle 2-core bench machine,
 * two gated threads vs one: small model 1.41k → 1.77k training tok/s, 1.59k → 1.86k generation
 * tok/s; tiny model within noise. A loaded machine may still prefer 1 (`RLHF_BLAS_THREADS=1`).
 */
export const DEFAULT_BLAS_THREADS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * Turn the BLAS matmul path on or off for the wasm backend. `RLHF_BLAS=off` in the environment wins
 * over `auto` (a quick A/B without editing configs); `RLHF_BLAS=system` takes only OpenBLAS/Accelerate
 * and `RLHF_BLAS=bundled` only rlhf-kit's own GEMM. `RLHF_BLAS_THREADS` is the default thread count,
 * and without either, DEFAULT_BLAS_THREADS.
 */
export async function configureBlas(mode: BlasMode, threads: number | null = null): Promise<MatMulPathInfo> {
  active = null;
  if (mode !== 'auto' && mode !== 'off') {
    throw new UserError(`engine.blas: expected auto | off, got '${String(mode)}'`);
  }
  const envMode = process.env['RLHF_BLAS'];
  if (mode === 'off' || envMode === 'off' || envMode === '0') {
    return wasmPath(mode === 'off' ? 'engine.blas is off' : `RLHF_BLAS=${envMode} in the environment`);
  }
  const wanted = threads ?? threadsFromEnv() ?? DEFAULT_BLAS_THREADS;
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new UserError(`engine.blasThreads: expected a positive integer, got ${wanted}`);
  }
  const lookup = await loadBlas(blasSourceFromEnv(envMode));
  if (lookup.library === null) return wasmPath(lookup.reason);
  const lib = lookup.library;
  lib.setThreads?.(wanted);
  active = lib;
  return { path: 'blas', vendor: lib.vendor, library: lib.path, threads: lib.getThreads?.() ?? null, reason: null };
}

function wasmPath(reason: string): MatMulPathInfo {
  return { path: 'wasm', vendor: null, library: null, threads: null, reason };
}

function blasSourceFromEnv(raw: string | undefined): BlasSource {
  if (raw === undefined || raw === '' || raw === 'auto' || raw === 'on' || raw === '1') return 'any';
  if (raw === 'system' || raw === 'bundled') return raw;
  throw new UserError(`RLHF_BLAS: expected auto | system | bundled | off, got '${raw}'`);
}

function threadsFromEnv(): number | null {
  const raw = process.env['RLHF_BLAS_THREADS'];
  if (raw === undefined || raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`RLHF_BLAS_THREADS: expected a positive integer, got '${raw}'`);
  return n;
}

/** One line for `rlhf env`. */
export function describeMatMulPath(info: MatMulPathInfo): string {
  if (info.path === 'wasm') return `wasm (XNNPACK) — no native GEMM: ${info.reason ?? 'unknown'}`;
  const routine = info.vendor === 'rlhf-kit' ? "rlhf-kit's own sgemm (native/gemm.c, built at npm install)" : `${info.vendor} cblas_sgemm`;
  return `${routine} via koffi (${info.library}, ${info.threads ?? 'default'} threads)`;
}

/**
 * One line for the top of `rlhf pipeline` (what `npm start` runs): which library the matmuls will
 * use (as `configureBlas` will choose it), and — when it is the single-threaded wasm fallback — the
 * commands that bring a faster one.
 */
export async function matmulStartupNote(): Promise<string> {
  const envMode = process.env['RLHF_BLAS'];
  if (envMode === 'off' || envMode === '0') return `matmuls: the wasm kernels (RLHF_BLAS=${envMode})`;
  return matmulNote(await loadBlas(blasSourceFromEnv(envMode)), threadsFromEnv() ?? DEFAULT_BLAS_THREADS);
}

export function matmulNote(lookup: BlasLookup, threads: number, platform: NodeJS.Platform = process.platform): string {
  if (lookup.library !== null) {
    const what = lookup.library.vendor === 'rlhf-kit' ? "rlhf-kit's own GEMM (built at npm install)" : `${lookup.library.vendor} (${lookup.library.path})`;
    return `matmuls: ${what}, up to ${threads} threads`;
  }
  const compiler = platform === 'darwin' ? 'xcode-select --install' : 'apt-get install gcc';
  return `matmuls: the single-threaded wasm kernels (${lookup.reason}). Runs take about 2.5x longer than ` +
    `with a native GEMM: build rlhf-kit's own with a C compiler (\`${compiler} && npm run install\` in the rlhf-kit folder)` +
    (platform === 'linux' ? ', or install OpenBLAS (`apt-get install libopenblas0-pthread`)' : '');
}
