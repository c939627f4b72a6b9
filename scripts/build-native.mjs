#!/usr/bin/env node
// Compiles native/gemm.c into build/native/ at `npm install` (the package's `install` script), so the
// fast matmul path needs no system BLAS: Node's machines here ship a C compiler for node-gyp, and a
// library built with -march=native uses this CPU's widest vectors. Never fails the install: without
// a compiler (or OpenMP) rlhf-kit falls back to a system OpenBLAS or the wasm kernels, and says so.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'gemm.c');
const outDir = join(root, 'build', 'native');
const libName = process.platform === 'darwin' ? 'librlhf_gemm.dylib' : 'librlhf_gemm.so';
const target = join(outDir, libName);

if (process.platform === 'win32' || process.env['RLHF_NATIVE_BUILD'] === 'off') {
  console.log(`rlhf-kit: native GEMM not built (${process.platform === 'win32' ? 'Windows' : 'RLHF_NATIVE_BUILD=off'})`);
  process.exit(0);
}

const compiler = process.env['CC'] || 'cc';
const base = ['-O3', '-std=gnu11', '-shared', '-fPIC', source];
// Most specific first: this CPU's vectors with OpenMP threads, then without threads, then generic.
const attempts = [
  ['-march=native', '-fopenmp'],
  ['-march=native'],
  [],
];
mkdirSync(outDir, { recursive: true });
const partial = `${target}.partial`;
const errors = [];
for (const flags of attempts) {
  const args = [...base, ...flags, '-o', partial];
  const result = spawnSync(compiler, args, { encoding: 'utf8' });
  if (result.status === 0) {
    renameSync(partial, target); // never leave a half-written library where the loader looks
    console.log(`rlhf-kit: built ${join('build', 'native', libName)} (${compiler} ${flags.join(' ') || 'generic'})`);
    process.exit(0);
  }
  errors.push(`${compiler} ${flags.join(' ')}: ${(result.error?.message ?? result.stderr ?? '').trim().split('\n')[0]}`);
}
rmSync(partial, { force: true });
console.log(`rlhf-kit: native GEMM not built, matmuls use a system OpenBLAS or the wasm kernels (${errors[0]})`);
process.exit(0);
