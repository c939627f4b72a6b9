/**
 * The bench harness's shapes. A bench is a file `bench/<name>.ts` whose module exports
 * `bench: Bench`; `bench/run.ts` finds every such file, runs it, and prints what it emits.
 */

/** One measured number. `name` (or `model` for a model bench) says what was measured. */
export interface BenchResult {
  name?: string;
  model?: string;
  metric: string;
  value: number;
  unit?: string;
  backend: string;
  [extra: string]: string | number | boolean | undefined;
}

export interface BenchContext {
  /** Backend asked for on the command line (`--backend`, default wasm); a bench may use others. */
  backend: 'auto' | 'wasm' | 'cpu' | 'tensorflow';
  /** Quick mode (`--quick`): shorter timings and smaller sizes, for a smoke run. */
  quick: boolean;
  /** Report one result; the runner prints it as a JSON line or a table row. */
  emit(result: BenchResult): void;
}

export interface Bench {
  /** Short id, used by `--filter`. */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

/**
 * Milliseconds per call of `fn`: a few warm-up calls, then calls until `minMs` have passed
 * (at least `minIters`). `fn` must finish its work synchronously or return a promise of it.
 */
export async function timePerCall(
  fn: () => unknown, opts: { warmup?: number; minMs?: number; minIters?: number } = {},
): Promise<number> {
  const { warmup = 2, minMs = 500, minIters = 3 } = opts;
  for (let i = 0; i < warmup; i++) await fn();
  let iters = 0;
  const start = performance.now();
  let elapsed = 0;
  while (iters < minIters || elapsed < minMs) {
    await fn();
    iters++;
    elapsed = performance.now() - start;
  }
  return elapsed / iters;
}
