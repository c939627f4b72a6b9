import { combineLlama2, llama2Select, logit, sigmoid, whitenBatch, LLAMA2_SAFETY_THRESHOLD } from '../../src/ppo/combine-rewards.js';

describe('Llama 2 combined reward (§3.2.3)', () => {
  test('the threshold is the paper\'s 0.15', () => {
    expect(LLAMA2_SAFETY_THRESHOLD).toBe(0.15);
  });

  test('selection: safety score on safety prompts or below 0.15, else helpfulness', () => {
    // sigmoid space: (R_h, R_s, is_safety)
    const { combined, fromSafety } = llama2Select(
      [0.9, 0.9, 0.9, 0.9, 0.9],
      [0.6, 0.14, 0.15, 0.16, 0.7],
      [false, false, false, false, true],
    );
    // 0.14 < 0.15 → R_s; 0.15 is not below 0.15 → R_h; is_safety overrides a high R_s → R_s
    expect(fromSafety).toEqual([false, true, false, false, true]);
    expect(combined).toEqual([0.9, 0.14, 0.9, 0.9, 0.7]);
  });

  test('the threshold is configurable', () => {
    expect(llama2Select([0.9], [0.3], [false], 0.5).combined).toEqual([0.3]);
    expect(llama2Select([0.9], [0.3], [false], 0.2).combined).toEqual([0.9]);
  });

  test('logit reverses the sigmoid; whitening uses the unbiased variance', () => {
    expect(logit(sigmoid(2))).toBeCloseTo(2, 12);
    expect(logit(sigmoid(-7.5))).toBeCloseTo(-7.5, 9);
    expect(Number.isFinite(logit(1))).toBe(true);
    // (1, 2, 3, 6): mean 3, Σ(x − 3)² = 14, var 14/3
    const w = whitenBatch([1, 2, 3, 6]);
    [-2, -1, 0, 3].forEach((d, i) => expect(w[i]).toBeCloseTo(d / Math.sqrt(14 / 3), 7));
    expect(whitenBatch([4])).toEqual([0]);
  });

  test('σ → select → logit → whiten, against hand-computed values', () => {
    // R_h = σ(2, −1, 0.5, 3), R_s = σ(1, −2, −1.5, 0); the last prompt is a safety prompt.
    // σ(−2) = 0.1192 < 0.15 → R_s; σ(−1.5) = 0.1824 ≥ 0.15 → R_h; σ(1) = 0.731 → R_h.
    // logits (2, −2, 0.5, 0): mean 0.125, Σ(x − mean)² = 8.1875, unbiased var 2.7291667, std 1.6520190
    const out = combineLlama2([2, -1, 0.5, 3], [1, -2, -1.5, 0], [false, false, false, true]);
    expect(out.fromSafety).toEqual([false, true, false, true]);
    out.combined.forEach((c, i) => expect(c).toBeCloseTo([0.8807971, 0.1192029, 0.6224593, 0.5][i]!, 7));
    const expected = [1.875, -2.125, 0.375, -0.125].map((d) => d / Math.sqrt(8.1875 / 3));
    out.scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i]!, 6));
    expect(out.scores[0]).toBeCloseTo(1.134975, 5);
  });

  test('mismatched lengths and a threshold outside (0, 1) are errors', () => {
    expect(() => llama2Select([0.5], [0.5, 0.5], [false, false])).toThrow(/one helpfulness score/);
    expect(() => combineLlama2([0], [0], [false], 1.5)).toThrow(/threshold/);
  });
});
