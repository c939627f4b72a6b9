import { learningRateAt, lrMultiplier } from '../../src/training/schedule.js';

// Values from the formulas of transformers' get_{constant,linear,cosine}_schedule_with_warmup,
// warmup 2, total 10.
const opts = { warmupSteps: 2, totalSteps: 10 };

describe('lr schedules (HF definitions)', () => {
  test('warmup is linear from 0 in every kind', () => {
    for (const kind of ['constant', 'linear', 'cosine'] as const) {
      expect(lrMultiplier(kind, 0, opts)).toBe(0);
      expect(lrMultiplier(kind, 1, opts)).toBe(0.5);
      expect(lrMultiplier(kind, 2, opts)).toBe(1);
    }
  });
  test('linear decays to 0 at total steps', () => {
    expect([3, 4, 6, 9, 10, 12].map((s) => lrMultiplier('linear', s, opts))).toEqual([0.875, 0.75, 0.5, 0.125, 0, 0]);
  });
  test('cosine: half-cosine from 1 to 0', () => {
    expect(lrMultiplier('cosine', 4, opts)).toBeCloseTo(0.8535533905932737, 12);
    expect(lrMultiplier('cosine', 6, opts)).toBeCloseTo(0.5, 12);
    expect(lrMultiplier('cosine', 10, opts)).toBeCloseTo(0, 12);
    // num_cycles 1 goes back up to 1 at the end
    expect(lrMultiplier('cosine', 10, { ...opts, numCycles: 1 })).toBeCloseTo(1, 12);
  });
  test('constant after warmup; no warmup starts at the peak', () => {
    expect(lrMultiplier('constant', 7, opts)).toBe(1);
    expect(learningRateAt('linear', 3e-4, 0, { warmupSteps: 0, totalSteps: 4 })).toBe(3e-4);
    expect(learningRateAt('linear', 3e-4, 1, { warmupSteps: 0, totalSteps: 4 })).toBeCloseTo(2.25e-4, 15);
  });
});
