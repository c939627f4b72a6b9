import { interpolate } from '../../src/config/interpolate.js';

describe('interpolate', () => {
  it('splices text and keeps the type of whole-value references, following chains', () => {
    const r = interpolate({
      run: { name: 'r1' },
      output_dir: 'runs/${run.name}/sft',
      log: '${output_dir}/log.txt',
      steps: 10,
      eval: { every: '${steps}', label: 'every ${steps} steps', betas: '${opt.betas}' },
      opt: { betas: [0.9, 0.95] },
      lit: 'cost: $${price} and $5',
    });
    expect(r.problems).toEqual([]);
    expect(r.value).toEqual({
      run: { name: 'r1' },
      output_dir: 'runs/r1/sft',
      log: 'runs/r1/sft/log.txt',
      steps: 10,
      eval: { every: 10, label: 'every 10 steps', betas: [0.9, 0.95] },
      opt: { betas: [0.9, 0.95] },
      lit: 'cost: ${price} and $5',
    });
  });

  it('reports cycles and unknown references, marking dependants as failed', () => {
    const r = interpolate({ a: '${b}', b: 'x${a}', c: '${run.nam}', run: { name: 'r' }, d: 'at ${c}' });
    expect(r.problems).toEqual([
      { path: ['b'], message: 'circular reference: a → b → a' },
      { path: ['c'], message: 'unknown reference ${run.nam} (did you mean ${run.name}?)' },
    ]);
    expect([...r.failed].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(r.value.d).toBe('at ${c}');
  });

  it('refuses a section spliced into text', () => {
    const r = interpolate({ opt: { lr: 1 }, s: 'x ${opt}' });
    expect(r.problems).toEqual([{ path: ['s'], message: '${opt} is a list or section; it can only be used as the whole value' }]);
  });
});
