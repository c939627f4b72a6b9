import { flattenParams, sanitizeKey, truncateCodePoints } from '../../src/tracking/params.js';

describe('flattenParams', () => {
  it('turns nested sections into dotted keys and values into text', () => {
    expect(flattenParams({
      stage: 'sft',
      optim: { lr: 0.0003, betas: [0.9, 0.95], fused: false },
      lora: { rank: 8, targets: { q: true } },
      data: { path: null, skipped: undefined, extra: {} },
    })).toEqual({
      'stage': 'sft',
      'optim.lr': '0.0003',
      'optim.betas': '[0.9,0.95]',
      'optim.fused': 'false',
      'lora.rank': '8',
      'lora.targets.q': 'true',
      'data.path': 'null',
      'data.extra': '{}',
    });
  });
});

describe('truncateCodePoints', () => {
  it('counts code points as Python len() does and never splits a surrogate pair', () => {
    expect(truncateCodePoints('ab😀cd', 3)).toBe('ab😀');
    expect(truncateCodePoints('ab😀cd', 2)).toBe('ab');
    expect(truncateCodePoints('x'.repeat(6001), 6000)).toHaveLength(6000);
    expect(truncateCodePoints('short', 6000)).toBe('short');
  });
});

describe('sanitizeKey', () => {
  it('keeps MLflow-valid keys, slashes included', () => {
    expect(sanitizeKey('objective/kl')).toBe('objective/kl');
    expect(sanitizeKey('policy/clipfrac_avg')).toBe('policy/clipfrac_avg');
    expect(sanitizeKey('train loss-1.2')).toBe('train loss-1.2');
  });
  it('replaces other characters and normalises the path so it stays in the run folder', () => {
    expect(sanitizeKey('eval:acc@1')).toBe('eval_acc_1');
    expect(sanitizeKey('/a//b/')).toBe('a/b');
    expect(sanitizeKey('../../etc/passwd')).toBe('__/__/etc/passwd');
    expect(sanitizeKey('')).toBe('_');
  });
});
