/**
 * sgemm GFLOP/s of each native library the wasm BatchMatMul can call — rlhf-kit's own GEMM
 * (native/gemm.c, built at npm install) and a system OpenBLAS — on the products of a SmolLM-135M
 * LoRA step at batch 4 × 256 (1024 token rows, hidden 576, MLP 1536, vocab chunk 8192) and of
 * decoding (8 rows), at 1 thread and at the default thread count. Straight calls on typed arrays:
 * no TF.js, so the figure is the library's own.
 */
import { DEFAULT_BLAS_THREADS, loadBlas, type BlasSource } from '../src/engine/blas/index.js';
import { Rng } from '../src/engine/rng.js';
import { timePerCall, type Bench } from './harness.js';

interface Product { name: string; m: number; n: number; k: number; ta: boolean; tb: boolean }

const PRODUCTS: Product[] = [
  { name: 'x·W (gate/up)', m: 1024, n: 1536, k: 576, ta: false, tb: false },
  { name: 'h·Wdown', m: 1024, n: 576, k: 1536, ta: false, tb: false },
  { name: 'dy·Wᵀ (dx)', m: 1024, n: 576, k: 1536, ta: false, tb: true },
  { name: 'xᵀ·dy (dW)', m: 576, n: 1536, k: 1024, ta: true, tb: false },
  { name: 'h·Eᵀ (logits chunk)', m: 1024, n: 8192, k: 576, ta: false, tb: true },
  { name: 'q·kᵀ (one head)', m: 256, n: 256, k: 64, ta: false, tb: true },
  { name: 'decode x·W', m: 8, n: 1536, k: 576, ta: false, tb: false },
];

const LIBRARIES: { source: BlasSource; label: string }[] = [
  { source: 'bundled', label: 'rlhf-kit' },
  { source: 'system', label: 'openblas' },
];

export const bench: Bench = {
  name: 'gemm',
  description: "sgemm GFLOP/s: rlhf-kit's own GEMM vs a system OpenBLAS, on a 135M-shape step's products",
  async run(ctx) {
    const rng = new Rng(3);
    const minMs = ctx.quick ? 150 : 600;
    for (const { source, label } of LIBRARIES) {
      const lookup = await loadBlas(source);
      if (lookup.library === null) {
        ctx.emit({ name: label, metric: 'missing', value: 0, backend: 'native', reason: lookup.reason });
        continue;
      }
      const lib = lookup.library;
      for (const threads of [...new Set([1, DEFAULT_BLAS_THREADS])]) {
        lib.setThreads?.(threads);
        for (const p of PRODUCTS) {
          const a = rng.fillNormal(new Float32Array(p.m * p.k), 1);
          const b = rng.fillNormal(new Float32Array(p.k * p.n), 1);
          const c = new Float32Array(p.m * p.n);
          const ms = await timePerCall(() => lib.sgemm(p.ta, p.tb, p.m, p.n, p.k, a, p.ta ? p.m : p.k, b, p.tb ? p.k : p.n, c, p.n), { minMs });
          ctx.emit({
            name: `${label} ${p.name} [${p.m},${p.k}]·[${p.k},${p.n}]`, metric: 'gflops', value: (2 * p.m * p.n * p.k) / (ms * 1e6),
            unit: 'GFLOP/s', backend: 'native', max_threads: threads,
          });
        }
      }
    }
  },
};
