import { applyOverrides, parseOverride, parseOverrideValue } from '../../src/config/overrides.js';
import { formatProblem } from '../../src/config/problems.js';

describe('parseOverrideValue', () => {
  it.each([
    ['3e-4', 0.0003],
    ['16', 16],
    ['true', true],
    ['null', null],
    ['~', null],
    ['', ''],
    ['cosine', 'cosine'],
    ['[0.9, 0.95]', [0.9, 0.95]],
    ['{a: 1}', { a: 1 }],
    ['"007"', '007'],
    ['http://localhost:5000', 'http://localhost:5000'],
    ['a: b', 'a: b'], // only [ and { start collections
    ['#1', '#1'], // not a YAML comment
  ])('%s', (text, value) => {
    expect(parseOverrideValue(text)).toEqual(value);
  });
});

describe('parseOverride', () => {
  it('reads set and delete forms', () => {
    expect(parseOverride('optim.lr=1e-3', 0)).toEqual({ kind: 'set', text: 'optim.lr=1e-3', index: 0, path: ['optim', 'lr'], value: 0.001 });
    expect(parseOverride('~lora', 1)).toEqual({ kind: 'delete', text: '~lora', index: 1, path: ['lora'] });
  });
  it.each([
    ['optim.lr', "override 'optim.lr' expected key=value (or ~key to delete a key)"],
    ['optim..lr=1', "override 'optim..lr=1' 'optim..lr' is not a dotted key path like optim.lr"],
    ['~a=1', "override '~a=1' a deletion is `~key` alone, without `=value`"],
    ['a=[1,', "override 'a=[1,' a: value is not valid YAML: Flow sequence must end with a ]"],
  ])('rejects %s', (text, message) => {
    const p = parseOverride(text, 0);
    expect('kind' in p).toBe(false);
    if (!('kind' in p)) expect(formatProblem(p)).toBe(message);
  });
});

describe('applyOverrides', () => {
  const base = { optim: { lr: 0.1, betas: [0.9, 0.95] }, data: { files: ['a', 'b'] }, name: 'x' };

  it('sets, creates sections, indexes lists and deletes (a missing key silently), without touching the input', () => {
    const r = applyOverrides(base, ['optim.lr=0.2', 'lora.rank=8', 'data.files.1=c', 'data.files.2=d', '~optim.betas', '~no.such']);
    expect(r.problems).toEqual([]);
    expect(r.data).toEqual({ optim: { lr: 0.2 }, data: { files: ['a', 'c', 'd'] }, name: 'x', lora: { rank: 8 } });
    expect(base.optim.lr).toBe(0.1);
    expect([...r.origins.keys()]).toEqual(['optim.lr', 'lora.rank', 'data.files.1', 'data.files.2', 'optim.betas']);
  });

  it('a later override of a section replaces the origins of its keys', () => {
    const r = applyOverrides(base, ['optim.lr=0.2', 'optim={lr: 0.3}']);
    expect(r.data.optim).toEqual({ lr: 0.3 });
    expect([...r.origins.keys()]).toEqual(['optim']);
  });

  it('names the override when a path runs through a value', () => {
    const r = applyOverrides(base, ['name.first=y', 'data.files.5=z']);
    expect(r.problems.map(formatProblem)).toEqual([
      "override 'name.first=y' name.first: name is a string, not a section",
      "override 'data.files.5=z' data.files.5: no item 5 in a list of 2",
    ]);
  });
});
