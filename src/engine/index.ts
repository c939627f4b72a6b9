import * as tf from '@tensorflow/tfjs-core';
// Gradient definitions are registered by the @tensorflow/tfjs bundle, not by tfjs-core (whose own
// register_all_gradients is an ESM file Node cannot load). Its registries are global, so this
// side-effect import serves every `import * as tf from '@tensorflow/tfjs-core'` in the project.
import '@tensorflow/tfjs';
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../errors.js';
import { installLeanBackprop, uninstallLeanBackprop } from './backprop.js';
import { configureBlas, describeMatMulPath, type BlasMode, type MatMulPathInfo } from './blas/index.js';
import { GRADIENT_PATCHES, installGradientPatches } from './gradients.js';
import { importNativeBackend, nativeInstallHint } from './native.js';
import { checkTfjsVersions } from './tfjs-version.js';
import { installWasmPatches, WASM_PATCHES } from './wasm/patches.js';

export { Rng, type RngState } from './rng.js';
export type { BlasMode, MatMulPathInfo } from './blas/index.js';
export { describeMatMulPath } from './blas/index.js';
export { PATCHED_TFJS_VERSION, checkTfjsVersions } from './tfjs-version.js';

export type BackendName = 'auto' | 'wasm' | 'cpu' | 'tensorflow';

export interface EngineOptions {
  /** Which TF.js backend; `auto` = tensorflow when importable, else wasm. Default `auto`. */
  backend?: BackendName;
  /**
   * Threads for the wasm backend. Only 1 works under Node: tfjs-backend-wasm's threaded build starts
   * its pthreads as Web Workers from `blob:` URLs, which Node's worker_threads refuses
   * (ERR_WORKER_PATH) — so more than 1 is a user error, not a silent no-op. For several cores use
   * `tensorflow` (libtensorflow schedules its own threads).
   */
  threads?: number;
  /**
   * wasm only: run matmuls on a system BLAS (OpenBLAS / Accelerate via koffi) when one loads
   * (`auto`, the default), or never (`off`). `RLHF_BLAS=off` in the environment also turns it off.
   */
  blas?: BlasMode;
  /** BLAS compute threads; default `RLHF_BLAS_THREADS`, else the cores, at most 4 (see DEFAULT_BLAS_THREADS). Small products always run on one. */
  blasThreads?: number;
  /** Recorded in the description; the seeded source itself is `Rng` (TF.js random ops are never used). */
  seed?: number;
}

/** What `initEngine` set up — `rlhf env` prints it, recipes log it. */
export interface EngineInfo {
  requested: BackendName;
  backend: 'wasm' | 'cpu' | 'tensorflow';
  versions: Record<string, string>;
  /** Compute threads, or null where the backend manages its own (tensorflow). */
  threads: number | null;
  /** Whether the wasm binary in use is the SIMD one; null on other backends. */
  simd: boolean | null;
  /** Kernels rlhf-kit registered itself, with why. Empty off wasm. */
  patchedKernels: { name: string; reason: string }[];
  /** wasm only: whether BatchMatMul runs on a system BLAS or on wasm, and why; null elsewhere. */
  matmul: MatMulPathInfo | null;
  /** Gradients rlhf-kit registered (all backends), with why. */
  patchedGradients: { name: string; reason: string }[];
  /** Whether the backward pass frees gradients and saved activations as it goes (`./backprop.ts`). */
  leanBackprop: boolean;
  seed: number | null;
}

/** Choose, initialise and (on wasm) patch the TF.js backend. Safe to call again to switch. */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const requested = opts.backend ?? 'auto';
  const threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new UserError(`engine.threads: expected a positive integer, got ${opts.threads}`);
  }
  // Before any patch is installed: they reach into TF.js internals of one exact release.
  checkTfjsVersions();
  const versions: Record<string, string> = {
    node: process.versions.node,
    'tfjs-core': tf.version_core,
  };

  let backend: EngineInfo['backend'];
  if (requested === 'tensorflow' || requested === 'auto') {
    const native = await importNativeBackend();
    if (native !== null) {
      backend = 'tensorflow';
      versions[native.packageName] = native.version;
    } else if (requested === 'tensorflow') {
      throw new UserError(nativeInstallHint());
    } else {
      backend = 'wasm';
    }
  } else if (requested === 'wasm' || requested === 'cpu') {
    backend = requested;
  } else {
    throw new UserError(`engine.backend: expected auto | wasm | cpu | tensorflow, got '${String(requested)}'`);
  }
  if (threads > 1 && backend !== 'tensorflow') {
    throw new UserError(
      `engine.threads: ${threads} threads are not available on the ${backend} backend under Node ` +
      `(tfjs-backend-wasm's threaded build needs browser Web Workers); use engine.threads: 1, ` +
      `or engine.backend: tensorflow for multi-core.`,
    );
  }

  if (!(await tf.setBackend(backend))) {
    throw new Error(`rlhf-kit: the ${backend} backend failed to initialise`);
  }
  await tf.ready();
  installGradientPatches();
  // Free gradients and saved activations during the backward pass (RLHF_LEAN_BACKPROP=off: stock walk, for A/B).
  const leanBackprop = process.env['RLHF_LEAN_BACKPROP'] !== 'off';
  if (leanBackprop) installLeanBackprop();
  else uninstallLeanBackprop();
  const patchedGradients = GRADIENT_PATCHES.map((p) => ({ name: p.config.kernelName, reason: p.reason }));

  let simd: boolean | null = null;
  let patchedKernels: EngineInfo['patchedKernels'] = [];
  let threadCount: number | null = null;
  let matmul: MatMulPathInfo | null = null;
  if (backend === 'wasm') {
    versions['tfjs-backend-wasm'] = version_wasm;
    simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    threadCount = getThreadsCount();
    const names = new Set(installWasmPatches());
    matmul = await configureBlas(opts.blas ?? 'auto', opts.blasThreads ?? null);
    const matmulPath = describeMatMulPath(matmul);
    patchedKernels = WASM_PATCHES
      .filter((p) => names.has(p.kernelName))
      .map((p) => ({ name: p.kernelName, reason: p.kernelName === 'BatchMatMul' ? `${p.reason}; runs on ${matmulPath}` : p.reason }));
  } else if (backend === 'cpu') {
    versions['tfjs-backend-cpu'] = version_cpu;
    threadCount = 1;
    // Skip tfjs-backend-cpu's one-time "install the node backend" banner: `tensorflow` is that.
    (tf.backend() as { firstUse?: boolean }).firstUse = false;
  }
  return { requested, backend, versions, threads: threadCount, simd, patchedKernels, matmul, patchedGradients, leanBackprop, seed: opts.seed ?? null };
}
