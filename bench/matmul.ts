/**
 * Stock vs patched wasm BatchMatMul, in GFLOP/s, on the products a transformer step makes:
 * the weight-gradient and attention shapes that carry transpose flags or batch dims.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine/index.js';
import { Rng } from '../src/engine/rng.js';
import { installWasmPatches, uninstallWasmPatches } from '../src/engine/wasm/patches.js';
import { timePerCall, type Bench } from './harness.js';

interface Case {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

export const MATMUL_CASES: Case[] = [
  { name: '[512,128]x[512,128]T', a: [512, 128], b: [512, 128], transposeA: false, transposeB: true },
  { name: '[512,128]Tx[512,128] (dW)', a: [512, 128], b: [512, 128], transposeA: true, transposeB: false },
  { name: '[512,128]x[128,512] (plain 2-D)', a: [512, 128], b: [128, 512], transposeA: false, transposeB: false },
  { name: '[16,128,32]x[16,128,32]T (q·kT)', a: [16, 128, 32], b: [16, 128, 32], transposeA: false, transposeB: true },
  { name: '[16,128,128]x[16,128,32] (p·v)', a: [16, 128, 128], b: [16, 128, 32], transposeA: false, transposeB: false },
  { name: '[4,128,256]x[256,256] (x·W)', a: [4, 128, 256], b: [256, 256], transposeA: false, transposeB: false },
];

function flops(c: Case): number {
  const out = tf.tidy(() => tf.matMul(tf.zeros(c.a), tf.zeros(c.b), c.transposeA, c.transposeB));
  const k = c.transposeA ? c.a[c.a.length - 2]! : c.a[c.a.length - 1]!;
  const f = 2 * out.size * k;
  out.dispose();
  return f;
}

function randomTensor(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(rng.fillNormal(new Float32Array(shape.reduce((x, y) => x * y, 1)), 1), shape);
}

async function gflops(c: Case, a: tf.Tensor, b: tf.Tensor, minMs: number): Promise<number> {
  const ms = await timePerCall(() => {
    const out = tf.matMul(a, b, c.transposeA, c.transposeB);
    out.dataSync();
    out.dispose();
  }, { minMs });
  return flops(c) / (ms * 1e6);
}

export const bench: Bench = {
  name: 'matmul',
  description: 'wasm BatchMatMul GFLOP/s, stock kernel vs rlhf-kit fast path',
  async run(ctx) {
    await initEngine({ backend: 'wasm' });
    const rng = new Rng(1);
    const minMs = ctx.quick ? 150 : 600;
    for (const c of MATMUL_CASES) {
      const a = randomTensor(rng, c.a);
      const b = randomTensor(rng, c.b);
      uninstallWasmPatches();
      const stock = await gflops(c, a, b, minMs);
      installWasmPatches();
      const patched = await gflops(c, a, b, minMs);
      tf.dispose([a, b]);
      ctx.emit({ name: `matmul ${c.name}`, metric: 'gflops_stock', value: stock, unit: 'GFLOP/s', backend: 'wasm' });
      ctx.emit({ name: `matmul ${c.name}`, metric: 'gflops_patched', value: patched, unit: 'GFLOP/s', backend: 'wasm' });
      ctx.emit({ name: `matmul ${c.name}`, metric: 'speedup', value: patched / stock, unit: 'x', backend: 'wasm' });
    }
  },
};
