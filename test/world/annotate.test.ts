import { Rng } from '../../src/engine/rng.js';
import { checkRow } from '../../src/data/schemas.js';
import { annotatePairs } from '../../src/world/annotate.js';
import { judge } from '../../src/world/judge.js';

const prompt = [{ role: 'user', content: 'Add 8 and 5.' }];
const pair = (a: string, b: string, extra: Record<string, unknown> = {}) => ({
  prompt,
  chosen: [{ role: 'assistant', content: a }],
  rejected: [{ role: 'assistant', content: b }],
  label: null,
  ...extra,
});

const GOOD = 'Happy to help. 8 plus 5 is 13.';
const WRONG = '8 plus 5 is 12.';
const BARE = '13';
const PLAIN = '8 plus 5 is 13.';
const PLAIN_NO_STOP = '8 plus 5 is 13';
const LONG = 'Happy to help. 8 plus 5 is 13. I hope this helps.';

/** Llama 2's level for a judge-score gap, with the world's thresholds written out here. */
function level(gap: number): string | null {
  if (gap >= 0.5) return 'significantly_better';
  if (gap >= 0.25) return 'better';
  if (gap >= 0.1) return 'slightly_better';
  if (gap >= 0.02) return 'negligibly_better';
  return null;
}

describe('world annotate', () => {
  const rows = [
    pair(GOOD, WRONG, { sampled: { a: 't=1', b: 't=0.7' } }),
    pair(BARE, PLAIN),
    pair(GOOD, LONG),
    pair(PLAIN, PLAIN_NO_STOP),
  ].map((value, i) => ({ row: i + 1, value }));
  const s = (r: string) => judge(prompt, r).score;

  test('the judge picks the side and the strength level from the score gap; ties are dropped; other columns kept', () => {
    // The pairs span the levels: a wrong answer, a bare one, a missing full stop, and two equally good replies.
    expect(level(s(GOOD) - s(WRONG))).toBe('significantly_better');
    expect(level(s(PLAIN) - s(BARE))).toBe('slightly_better');
    expect(level(Math.abs(s(GOOD) - s(LONG)))).toBeNull();
    expect(level(s(PLAIN) - s(PLAIN_NO_STOP))).toBe('negligibly_better');

    const { rows: out, stats } = annotatePairs(rows, { noise: 0, rng: new Rng(0), where: 'pairs.jsonl' });
    expect(out.map((r) => [r.label, (r.chosen as { content: string }[])[0]!.content, (r.rejected as { content: string }[])[0]!.content, r.strength])).toEqual([
      ['a', GOOD, WRONG, 'significantly_better'],
      ['b', PLAIN, BARE, 'slightly_better'],
      ['a', PLAIN, PLAIN_NO_STOP, 'negligibly_better'],
    ]);
    expect(out.map((r) => [r.chosen_score, r.rejected_score])).toEqual([
      [s(GOOD), s(WRONG)],
      [s(PLAIN), s(BARE)],
      [s(PLAIN), s(PLAIN_NO_STOP)],
    ]);
    expect(out[0]!.sampled).toEqual({ a: 't=1', b: 't=0.7' });
    expect(out[0]!.annotator).toBe('world_judge');
    expect(stats).toEqual({ pairs: 4, labelled: 3, ties: 1, flipped: 0, byStrength: { significantly_better: 1, slightly_better: 1, negligibly_better: 1 } });
    // Labelled rows are training rows; the unlabelled ones are refused.
    expect(out.every((r) => checkRow('preference', r).ok)).toBe(true);
    expect(checkRow('preference', rows[0]!.value)).toEqual({
      ok: false,
      issues: [{ field: 'label', reason: expect.stringMatching(/unlabelled pair/) as unknown as string }],
    });
  });

  test('annotator noise: one seeded draw per pair (ties included); a drawn flip labels the worse reply', () => {
    const noise = 0.5;
    const draws = (() => {
      const rng = new Rng(7);
      return rows.map(() => rng.uniform() < noise);
    })();
    const { rows: out, stats } = annotatePairs(rows, { noise, rng: new Rng(7), where: 'pairs.jsonl' });
    const kept = [0, 1, 3]; // row 3 (index 2) is a tie
    const judgeSide = ['a', 'b', 'a'];
    expect(out.map((r) => r.label)).toEqual(kept.map((i, j) => (draws[i] ? (judgeSide[j] === 'a' ? 'b' : 'a') : judgeSide[j])));
    expect(stats.flipped).toBe(kept.filter((i) => draws[i]).length);
    expect(stats.flipped).toBe(2); // the seed flips rows 1 and 4 (and draws a flip for the tie, row 3), not row 2
    expect(out.every((r) => r.strength === level(Math.abs(r.chosen_score - r.rejected_score)))).toBe(true);
    expect(out[0]!.annotator).toBe('world_judge(noise=0.5)');
  });

  test('errors name the row: an already labelled pair, a reply without an assistant turn, noise out of range', () => {
    const labelled = [{ row: 7, value: pair(GOOD, WRONG, { label: 'a' }) }];
    expect(() => annotatePairs(labelled, { noise: 0, rng: new Rng(0), where: 'p.jsonl' })).toThrow('p.jsonl: row 7: already labelled (label: "a")');
    const bad = [{ row: 2, value: { prompt, chosen: [{ role: 'user', content: 'x' }], rejected: 'y', label: null } }];
    expect(() => annotatePairs(bad, { noise: 0, rng: new Rng(0), where: 'p.jsonl' })).toThrow('p.jsonl: row 2: chosen: expected a reply');
    expect(() => annotatePairs([], { noise: 0.7, rng: new Rng(0), where: 'p.jsonl' })).toThrow('--noise 0.7: must be in [0, 0.5]');
  });
});
