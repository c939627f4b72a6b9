/**
 * Helpers for tests that compare the wasm backend against the cpu reference.
 * Inputs are plain typed arrays, so each backend builds its own tensors (no cross-backend moves).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';

export type TestBackend = 'cpu' | 'wasm';

/** Run `fn` on `backend` inside tidy and read every output back as a Float32Array. */
export async function runOn(backend: TestBackend, fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initEngine({ backend });
  const outs = tf.tidy(fn);
  const list = Array.isArray(outs) ? outs : [outs];
  const values = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  return values;
}

/** Run `fn` on cpu and on wasm; returns [cpu, wasm] outputs. */
export async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const cpu = await runOn('cpu', fn);
  const wasm = await runOn('wasm', fn);
  return [cpu, wasm];
}

/**
 * Normwise relative error max|a−b| / max|b| (b = reference). Per-element relative error is
 * meaningless for entries near zero after cancellation; this is the usual BLAS-test measure.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) return Infinity;
    diff = Math.max(diff, Math.abs(a - e));
    scale = Math.max(scale, Math.abs(e));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Expect every output of wasm to match cpu within `tol` normwise relative error. */
export function expectSameOutputs(cpu: Float32Array[], wasm: Float32Array[], tol: number): void {
  expect(wasm.length).toBe(cpu.length);
  cpu.forEach((ref, i) => {
    expect(wasm[i]!.length).toBe(ref.length);
    expect(relativeError(wasm[i]!, ref)).toBeLessThanOrEqual(tol);
  });
}

/** N(0,1) values for a shape, from the project's seeded Rng. */
export function randomValues(seed: number, shape: number[]): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 1);
}
