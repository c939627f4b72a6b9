import { dumpFlatYaml } from '../../src/tracking/pyyaml.js';

/** Expected texts are what `yaml.safe_dump({...}, default_flow_style=False, allow_unicode=True)` prints. */
describe('dumpFlatYaml (PyYAML safe_dump of a flat mapping)', () => {
  it.each([
    ['Default', 'a: Default\n'],
    ['0', "a: '0'\n"],
    ['', "a: ''\n"],
    ['yes', "a: 'yes'\n"],
    ['1.5', "a: '1.5'\n"],
    ['1e5', 'a: 1e5\n'],
    ['0189', 'a: 0189\n'],
    ['0127', "a: '0127'\n"],
    ['2024-01-01', "a: '2024-01-01'\n"],
    ['null', "a: 'null'\n"],
    ['~', "a: '~'\n"],
    ['-x', 'a: -x\n'],
    ['- x', "a: '- x'\n"],
    ['a#b', 'a: a#b\n'],
    ['a #b', "a: 'a #b'\n"],
    ["it's: x", "a: 'it''s: x'\n"],
    [' lead', "a: ' lead'\n"],
    ['file:///tmp/mlruns/0', 'a: file:///tmp/mlruns/0\n'],
    ['ünïcode ✓', 'a: ünïcode ✓\n'],
    ['tab\there', 'a: "tab\\there"\n'],
    ['line\nbreak', "a: 'line\n\n  break'\n"],
  ])('%j', (value, expected) => {
    expect(dumpFlatYaml({ a: value })).toBe(expected);
  });

  it('sorts keys and writes null, integers and empty lists', () => {
    expect(dumpFlatYaml({ tags: [], status: 1, end_time: null, b: 'x' }))
      .toBe('b: x\nend_time: null\nstatus: 1\ntags: []\n');
  });

  it('folds a long plain scalar at the first single space past column 80, indenting by 2', () => {
    const words = Array.from({ length: 25 }, () => 'word');
    const expected = 'name: ' + words.slice(0, 16).join(' ') + '\n  ' + words.slice(16).join(' ') + '\n';
    expect(dumpFlatYaml({ name: words.join(' ') })).toBe(expected);
  });
});

describe('dumpFlatYaml matches libyaml (CSafeDumper, what MLflow uses) on strings that need escaping', () => {
  it.each([
    // Astral-plane characters are not "printable" for libyaml: double quotes and \U escapes.
    ['ok 😀', 'a: "ok \\U0001F600"\n'],
    ['a\u0085b', 'a: "a\\Nb"\n'],
    ['say "hi"\u0001', 'a: "say \\"hi\\"\\x01"\n'],
  ])('%j', (value, expected) => {
    expect(dumpFlatYaml({ a: value })).toBe(expected);
  });

  it('folds a long double-quoted scalar at a space past column 80 without a trailing backslash', () => {
    const value = Array.from({ length: 20 }, () => 'tab\tx').join(' ');
    // Recorded from yaml.dump({'a': value}, Dumper=yaml.CSafeDumper, allow_unicode=True, default_flow_style=False).
    const chunk = 'tab\\tx';
    const expected = 'a: "' + Array(12).fill(chunk).join(' ') + '\n  ' + Array(8).fill(chunk).join(' ') + '"\n';
    expect(dumpFlatYaml({ a: value })).toBe(expected);
  });
});
