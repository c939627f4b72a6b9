import { NonFiniteGuard } from '../../src/training/nan-guard.js';
import { UserError } from '../../src/errors.js';

describe('NonFiniteGuard', () => {
  test('skips non-finite steps, resets on a good one, aborts after N in a row', () => {
    const guard = new NonFiniteGuard(3);
    expect(guard.check(1, 2.3, 0.5)).toBe(true);
    expect(guard.check(2, NaN, 0.5)).toBe(false);
    expect(guard.check(3, 2.1, Infinity)).toBe(false);
    expect(guard.check(4, 2.0, 0.4)).toBe(true);
    expect(guard.consecutiveSkips).toBe(0);
    expect(guard.check(5, NaN, NaN)).toBe(false);
    expect(guard.check(6, Infinity, 1)).toBe(false);
    let err: unknown;
    try {
      guard.check(7, NaN, 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/3 steps in a row.*step 7: loss=NaN/);
    expect(guard.totalSkips).toBe(5);
  });
});
