import { Rng } from '../../src/engine/rng.js';
import { packageRoot } from '../../src/paths.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

describe('Rng', () => {
  test('same seed gives the same stream; state round-trips', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    const st = a.getState();
    const next = a.uniform();
    expect(Rng.fromState(st).uniform()).toBe(next);
    expect(new Rng(43).nextUint32()).not.toBe(xs[0]);
  });
  test('uniform is in [0,1) with mean near 1/2, normal has unit variance', () => {
    const r = new Rng(1);
    let s = 0, s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) { const u = r.uniform(); expect(u).toBeGreaterThanOrEqual(0); expect(u).toBeLessThan(1); s += u; }
    expect(Math.abs(s / n - 0.5)).toBeLessThan(0.01);
    s = 0;
    for (let i = 0; i < n; i++) { const z = r.normal(); s += z; s2 += z * z; }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
  });
  test('fillDropoutMask makes the draws of the per-entry loop `uniform() < keep ? 1/keep : 0`, and leaves the same state', () => {
    for (const keep of [0.95, 0.5, 0.1]) {
      const a = new Rng(7);
      const b = new Rng(7);
      a.int(1000); // some state other than the seed's
      b.int(1000);
      const n = 5000;
      const fast = a.fillDropoutMask(new Float32Array(n), keep, 1 / keep);
      const slow = new Float32Array(n);
      for (let i = 0; i < n; i++) slow[i] = b.uniform() < keep ? 1 / keep : 0;
      expect(Array.from(fast)).toEqual(Array.from(slow));
      expect(a.getState()).toEqual(b.getState());
      const kept = fast.filter((v) => v !== 0).length / n;
      expect(Math.abs(kept - keep)).toBeLessThan(0.03);
    }
  });
  test('packageRoot finds package.json', () => {
    expect(existsSync(join(packageRoot(), 'package.json'))).toBe(true);
  });
});
