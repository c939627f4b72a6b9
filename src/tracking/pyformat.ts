/**
 * Python's text forms of floats and file paths, because MLflow's file store is written by Python
 * and readers (mlflow ui, our byte-for-byte tests) expect exactly what Python would have written.
 */

/**
 * `repr(float)` / `f"{x}"` in Python 3: shortest round-trip digits (the same digits JS picks),
 * fixed notation for 1e-4 <= |x| < 1e16 with a trailing `.0` on integers, otherwise scientific
 * with a signed exponent of at least two digits (`1e-05`, `1.5e+16`); `nan`, `inf`, `-inf`.
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest digits that round-trip.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1) || '0';
    return `${sign}${intPart}.${frac}`;
  }
  const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expSign = exp < 0 ? '-' : '+';
  return `${sign}${head}e${expSign}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Bytes that `urllib.parse.quote(s, safe='/')` leaves alone. */
const URL_SAFE = /[A-Za-z0-9_.\-~/]/;

/** `urllib.parse.quote(text, safe='/')`: UTF-8 bytes outside the safe set become `%XX`. */
export function pythonUrlQuote(text: string): string {
  let out = '';
  for (const ch of text) {
    if (URL_SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * `pathlib.Path(abs).as_uri()`, which MLflow uses for local artifact locations:
 * `/tmp/my runs` → `file:///tmp/my%20runs`. Windows paths keep the drive letter unquoted.
 */
export function pathToFileUri(absPath: string): string {
  const posix = absPath.replace(/\\/g, '/');
  const drive = /^[A-Za-z]:/.exec(posix);
  if (drive) return `file:///${drive[0]}${pythonUrlQuote(posix.slice(2))}`;
  return `file://${pythonUrlQuote(posix)}`;
}
