import { closestMatch, editDistance } from '../../src/config/suggest.js';

describe('editDistance', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['', 'abc', 3],
    ['lr', 'lr', 0],
    ['lr', 'rl', 1], // adjacent swap counts once
    ['weight_decai', 'weight_decay', 1],
    ['ca', 'abc', 3], // optimal string alignment, not full Damerau (which gives 2)
  ])('%s → %s = %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('closestMatch', () => {
  const keys = ['lr', 'betas', 'eps', 'weight_decay', 'grad_clip', 'grad_accum'];
  it('finds typos within the budget', () => {
    expect(closestMatch('lrr', keys)).toBe('lr');
    expect(closestMatch('LR', keys)).toBe('lr');
    expect(closestMatch('grad_acum', keys)).toBe('grad_accum');
    expect(closestMatch('beta', keys)).toBe('betas');
  });
  it('offers nothing for words too far from every candidate', () => {
    expect(closestMatch('learning_rate', keys)).toBeUndefined();
    expect(closestMatch('xyz', keys)).toBeUndefined();
    expect(closestMatch('lr', [])).toBeUndefined();
  });
});
