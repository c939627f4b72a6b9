import { bestIndex, bestOfKCurve, curveKs, median, medianIndex, selectBest, type PoolEntry, type ScoredPrompt } from '../../src/rs/select.js';

const user = (content: string) => [{ role: 'user' as const, content }];

describe('rejection sampling: which sample is kept', () => {
  test('best: the highest reward, the first one on ties', () => {
    expect(bestIndex([0.1, 0.7, -2, 0.7])).toBe(1);
    expect(bestIndex([-1, -3])).toBe(0);
    expect(bestIndex([5])).toBe(0);
  });

  test('median sample: the lower median by rank (ties by order), always one of the samples', () => {
    // ascending: -2 (2), 0.1 (0), 0.5 (4), 0.7 (1), 0.9 (3) → rank 2 is index 4
    expect(medianIndex([0.1, 0.7, -2, 0.9, 0.5])).toBe(4);
    // ascending: -2 (2), 0.1 (0), 0.7 (1), 0.9 (3) → rank ⌊3/2⌋ = 1 is index 0
    expect(medianIndex([0.1, 0.7, -2, 0.9])).toBe(0);
    // ties: 1 (0), 1 (1), 1 (2) → rank 1 is index 1
    expect(medianIndex([1, 1, 1])).toBe(1);
  });

  test('median value as numpy.median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([-1])).toBe(-1);
  });

  test('curve K values: powers of two up to K, and K itself', () => {
    expect(curveKs(1)).toEqual([1]);
    expect(curveKs(8)).toEqual([1, 2, 4, 8]);
    expect(curveKs(6)).toEqual([1, 2, 4, 6]);
  });
});

describe('best-of-K curve', () => {
  test('mean over prompts of max and median of the first k samples (hand-computed)', () => {
    const rewards = [
      [1, 3, 2, 8], // k=1: max 1 med 1; k=2: max 3 med 2; k=4: max 8 med 2.5
      [4, 0, 6, 2], // k=1: max 4 med 4; k=2: max 4 med 2; k=4: max 6 med 3
    ];
    expect(bestOfKCurve(rewards, 4)).toEqual([
      { k: 1, reward_max: 2.5, reward_median: 2.5 },
      { k: 2, reward_max: 3.5, reward_median: 2 },
      { k: 4, reward_max: 7, reward_median: 2.75 },
    ]);
  });

  test('the max can only grow with K; at K = 1 max and median agree', () => {
    const rewards = [[0.3, -0.2, 0.9, 0.1, 0.5, -1, 2, 0]];
    const curve = bestOfKCurve(rewards, 8);
    expect(curve.map((p) => p.reward_max)).toEqual([0.3, 0.3, 0.9, 2]);
    expect(curve[0]!.reward_median).toBe(0.3);
    // first 8 sorted: -1 -0.2 0 0.1 0.3 0.5 0.9 2 → (0.1 + 0.3) / 2
    expect(curve[3]!.reward_median).toBeCloseTo(0.2, 12);
  });

  test('too few samples for K is an error, not a silently shorter curve', () => {
    expect(() => bestOfKCurve([[1, 2]], 4)).toThrow('a prompt has 2 samples, fewer than 4');
  });
});

describe('selection against the pool of earlier rounds', () => {
  const round: ScoredPrompt[] = [
    { key: 'a', prompt: user('A?'), replies: ['a0', 'a1', 'a2'], rewards: [0.2, 0.9, 0.4] },
    { key: 'b', prompt: user('B?'), replies: ['b0', 'b1', 'b2'], rewards: [1.5, -0.5, 1.5] },
    { key: 'c', prompt: user('C?'), replies: ['c0', 'c1', 'c2'], rewards: [-1, -2, -3] },
  ];

  test('without a pool: each prompt keeps its best sample, in prompt order', () => {
    const s = selectBest(round, 'runs/x/rs');
    expect(s.kept).toEqual([
      { prompt: user('A?'), reply: 'a1', reward: 0.9, origin: 'runs/x/rs' },
      { prompt: user('B?'), reply: 'b0', reward: 1.5, origin: 'runs/x/rs' },
      { prompt: user('C?'), reply: 'c0', reward: -1, origin: 'runs/x/rs' },
    ]);
    expect(s.fromPool).toBe(0);
    expect(s.carried).toBe(0);
  });

  test('with a pool (re-scored): the pool reply stays only where it scores strictly higher; unsampled pool prompts carry over', () => {
    const pool = new Map<string, PoolEntry>([
      ['a', { prompt: user('A?'), reply: 'old a', reward: 1.2, origin: 'round1' }], // beats 0.9 → kept
      ['b', { prompt: user('B?'), reply: 'old b', reward: 1.5, origin: 'round1' }], // ties 1.5 → this round's
      ['d', { prompt: user('D?'), reply: 'old d', reward: -0.1, origin: 'round1' }], // not sampled → carried
    ]);
    const s = selectBest(round, 'round2', pool);
    expect(s.kept.map((e) => [e.reply, e.reward, e.origin])).toEqual([
      ['old a', 1.2, 'round1'],
      ['b0', 1.5, 'round2'],
      ['c0', -1, 'round2'],
      ['old d', -0.1, 'round1'],
    ]);
    expect(s.fromPool).toBe(1);
    expect(s.carried).toBe(1);
  });
});
