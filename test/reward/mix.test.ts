import { mixFiles } from '../../src/reward/recipe.js';

const file = (name: string, n: number) => ({ file: name, rows: Array.from({ length: n }, (_, i) => `${name}${i}`) });

describe('reward data mix', () => {
  test('the largest set with the given shares: 6,000 safety pairs at 90% take 667 of 12,000 helpfulness pairs', () => {
    const [safety, helpful] = mixFiles([file('s', 6000), file('h', 12000)], [0.9, 0.1], 0);
    // T = min(6000 / 0.9, 12000 / 0.1) = 6666.67 → 6000 and round(666.67) = 667
    expect(safety!.rows).toHaveLength(6000);
    expect(helpful!.rows).toHaveLength(667);
    expect(new Set(helpful!.rows).size).toBe(667);
  });

  test('shares are normalised; the limiting file is taken whole; seeded', () => {
    const out = mixFiles([file('a', 100), file('b', 1000)], [1, 1], 3);
    expect(out.map((f) => f.rows.length)).toEqual([100, 100]);
    expect(mixFiles([file('a', 100), file('b', 1000)], [1, 1], 3)[1]!.rows).toEqual(out[1]!.rows);
    expect(mixFiles([file('a', 10)], null, 0)[0]!.rows).toHaveLength(10);
  });

  test('one share per file, or a UserError naming data.mix', () => {
    expect(() => mixFiles([file('a', 10), file('b', 10)], [1], 0)).toThrow(/data\.mix: one share per data\.train file \(2 files\), got 1/);
  });
});
