import { pathToFileUri, pythonFloatRepr, pythonUrlQuote } from '../../src/tracking/pyformat.js';

describe('pythonFloatRepr (Python repr(float))', () => {
  it.each([
    [2.5, '2.5'],
    [2, '2.0'],
    [0.1 + 0.2, '0.30000000000000004'],
    [1e-5, '1e-05'],
    [0.0001, '0.0001'],
    [0.00012, '0.00012'],
    [-1.5e-7, '-1.5e-07'],
    [1e15, '1000000000000000.0'],
    [1e16, '1e+16'],
    [123456789012345680, '1.2345678901234568e+17'],
    [12345.678, '12345.678'],
    [1e100, '1e+100'],
    [5e-324, '5e-324'],
    [0, '0.0'],
    [-0, '-0.0'],
    [NaN, 'nan'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
  ])('%p → %s', (x, expected) => {
    expect(pythonFloatRepr(x)).toBe(expected);
  });
});

describe('file URIs as pathlib.Path.as_uri writes them', () => {
  it('quotes everything outside [A-Za-z0-9_.-~/] as UTF-8 %XX', () => {
    expect(pythonUrlQuote('a b+c:ü~')).toBe('a%20b%2Bc%3A%C3%BC~');
    expect(pathToFileUri('/tmp/my runs/mlruns')).toBe('file:///tmp/my%20runs/mlruns');
    expect(pathToFileUri('C:\\Users\\me\\mlruns')).toBe('file:///C:/Users/me/mlruns');
  });
});
