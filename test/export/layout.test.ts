import { batchLayout, epochPlan, warmupRatio } from '../../src/export/layout.js';

test('batchLayout keeps the global batch: per-device micro-batch × accumulation × GPUs', () => {
  expect(batchLayout(8, 1, 1)).toEqual({ global: 8, perDevice: 8, accumulation: 1 });
  // 16 per step over 4 GPUs: 4 each, as one micro-batch of 4 (gcd(8, 4)).
  expect(batchLayout(8, 2, 4)).toEqual({ global: 16, perDevice: 4, accumulation: 1 });
  // 12 per step over 2 GPUs: 6 each = 3 micro-batches of 2 (gcd(4, 6) = 2), so 2 × 3 × 2 = 12.
  expect(batchLayout(4, 3, 2)).toEqual({ global: 12, perDevice: 2, accumulation: 3 });
  expect(() => batchLayout(8, 1, 3)).toThrow('8 examples per step cannot be split evenly over --gpus 3');
});

test('epochPlan: exact steps when they fit in one pass, else whole epochs (rounded) over every row', () => {
  // SFT world: 300 steps × 8 = 2,400 of 12,000 rows.
  expect(epochPlan(300, 8, 12000)).toEqual({ maxSamples: 2400, epochs: 1, steps: 300, truncates: true });
  // Reward world: 1,800 × 16 = 28,800 > 20,000 rows: 1.44 epochs → 1 epoch of ⌊20000 / 16⌋ = 1,250 steps.
  expect(epochPlan(1800, 16, 20000)).toEqual({ maxSamples: 20000, epochs: 1, steps: 1250, truncates: false });
  expect(epochPlan(3000, 16, 20000)).toEqual({ maxSamples: 20000, epochs: 2, steps: 2500, truncates: false });
  expect(epochPlan(10, 10, 100)).toEqual({ maxSamples: 100, epochs: 1, steps: 10, truncates: false });
});

test('warmupRatio is warmup steps over the run, capped at 1', () => {
  expect(warmupRatio(20, 300)).toBeCloseTo(1 / 15, 12);
  expect(warmupRatio(50, 10)).toBe(1);
  expect(warmupRatio(0, 0)).toBe(0);
});
