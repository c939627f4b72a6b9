/**
 * The YAML that MLflow's `write_yaml` produces: `yaml.dump(d, default_flow_style=False,
 * allow_unicode=True, sort_keys=True, Dumper=CSafeDumper)`, for the flat mappings MLflow stores in
 * `meta.yaml` (strings, integers, null, empty lists). MLflow uses the libyaml-backed CSafeDumper
 * whenever PyYAML has it (every PyYAML wheel does), so strings follow libyaml's emitter: its choice
 * of style (plain, 'single', "double"), escapes, and line folding past column 80. (PyYAML's pure
 * Python emitter writes the same plain and single-quoted scalars; it differs on double-quoted ones,
 * i.e. strings with control characters, NEL or astral-plane characters.) Checked against
 * PyYAML 6.0.3 + libyaml on 20k random strings: identical.
 */

export type FlatYamlValue = string | number | boolean | null | readonly never[];

const BEST_WIDTH = 80;
/** A top-level mapping value is emitted with indent 0 + best_indent 2 for its continuation lines. */
const VALUE_INDENT = 2;

/** PyYAML's implicit resolvers (YAML 1.1): a plain scalar matching one of these is not a string. */
const IMPLICIT_NON_STRING = [
  /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/,
  /^(?:<<)$/,
  /^(?:~|null|Null|NULL|)$/,
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
  /^(?:=)$/,
];

/** Python's `re.match(...$)` also matches just before one trailing newline. */
function resolvesToNonString(value: string): boolean {
  const candidates = value.endsWith('\n') ? [value, value.slice(0, -1)] : [value];
  return candidates.some((v) => IMPLICIT_NON_STRING.some((re) => re.test(v)));
}

interface ScalarAnalysis {
  multiline: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
}

/** libyaml IS_PRINTABLE: what may appear unescaped (with allow_unicode). Note: no astral-plane characters. */
function isPrintable(cp: number): boolean {
  return cp === 0x0a || (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff);
}
const isBreak = (ch: string | undefined): boolean => ch !== undefined && '\r\n\x85\u2028\u2029'.includes(ch);
/** libyaml IS_BLANKZ: space, tab, a line break, or the end of the string. */
const isBlankOrEnd = (ch: string | undefined): boolean => ch === undefined || ch === '\0' || ch === ' ' || ch === '\t' || isBreak(ch);

/** libyaml `yaml_emitter_analyze_scalar`, reduced to the answers a block-mapping value needs. */
export function analyzeScalar(chars: readonly string[]): ScalarAnalysis {
  if (chars.length === 0) return { multiline: false, allowBlockPlain: true, allowSingleQuoted: true };
  const text = chars.join('');
  let blockIndicators = text.startsWith('---') || text.startsWith('...');
  let lineBreaks = false, special = false;
  let leadingSpace = false, leadingBreak = false, trailingSpace = false, trailingBreak = false;
  let breakSpace = false, spaceBreak = false, previousSpace = false, previousBreak = false;
  let precededByWhitespace = true;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const followedByWhitespace = isBlankOrEnd(chars[i + 1]);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      if ((ch === '?' || ch === ':' || ch === '-') && followedByWhitespace) blockIndicators = true;
    } else {
      if (ch === ':' && followedByWhitespace) blockIndicators = true;
      if (ch === '#' && precededByWhitespace) blockIndicators = true;
    }
    if (!isPrintable(ch.codePointAt(0)!)) special = true;
    if (isBreak(ch)) lineBreaks = true;
    const last = i === chars.length - 1;
    if (ch === ' ') {
      if (i === 0) leadingSpace = true;
      if (last) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(ch)) {
      if (i === 0) leadingBreak = true;
      if (last) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = previousBreak = false;
    }
    precededByWhitespace = isBlankOrEnd(ch);
  }
  let allowBlockPlain = true;
  let allowSingleQuoted = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) allowBlockPlain = false;
  if (breakSpace || spaceBreak || special) allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks || blockIndicators) allowBlockPlain = false;
  return { multiline: lineBreaks, allowBlockPlain, allowSingleQuoted };
}

const ESCAPES: Record<number, string> = {
  0x00: '0', 0x07: 'a', 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r', 0x1b: 'e',
  0x22: '"', 0x5c: '\\', 0x85: 'N', 0xa0: '_', 0x2028: 'L', 0x2029: 'P',
};

/** The output state libyaml's emitter keeps while writing one scalar (column counts characters). */
class ScalarWriter {
  out = '';
  column: number;
  whitespace = false;
  indention = false;
  constructor(startColumn: number) {
    this.column = startColumn;
  }
  put(ch: string): void {
    this.out += ch;
    this.column += 1;
  }
  putBreak(): void {
    this.out += '\n';
    this.column = 0;
  }
  /** WRITE_BREAK: '\n' becomes the configured line break; other breaks are copied. */
  writeBreak(ch: string): void {
    this.out += ch;
    this.column = 0;
  }
  indent(): void {
    if (!this.indention || this.column > VALUE_INDENT || (this.column === VALUE_INDENT && !this.whitespace)) this.putBreak();
    while (this.column < VALUE_INDENT) this.put(' ');
    this.whitespace = true;
    this.indention = true;
  }
  indicator(indicator: string, needWhitespace: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(' ');
    for (const ch of indicator) this.put(ch);
    this.whitespace = false;
    this.indention = false;
  }

  plain(t: readonly string[]): void {
    if (!this.whitespace && t.length > 0) this.put(' ');
    let spaces = false;
    for (let i = 0; i < t.length; i++) {
      const ch = t[i]!;
      if (ch === ' ') {
        if (!spaces && this.column > BEST_WIDTH && t[i + 1] !== ' ') this.indent();
        else this.put(ch);
        spaces = true;
      } else {
        this.put(ch);
        this.indention = false;
        spaces = false;
      }
    }
    this.whitespace = false;
    this.indention = false;
  }

  singleQuoted(t: readonly string[]): void {
    this.indicator("'", true);
    let spaces = false, breaks = false;
    for (let i = 0; i < t.length; i++) {
      const ch = t[i]!;
      if (ch === ' ') {
        if (!spaces && this.column > BEST_WIDTH && i !== 0 && i !== t.length - 1 && t[i + 1] !== ' ') this.indent();
        else this.put(ch);
        spaces = true;
      } else if (isBreak(ch)) {
        if (!breaks && ch === '\n') this.putBreak();
        this.writeBreak(ch);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.indent();
        if (ch === "'") this.put("'");
        this.put(ch);
        this.indention = false;
        spaces = breaks = false;
      }
    }
    if (breaks) this.indent();
    this.indicator("'", false);
  }

  doubleQuoted(t: readonly string[]): void {
    this.indicator('"', true);
    let spaces = false;
    for (let i = 0; i < t.length; i++) {
      const ch = t[i]!;
      const cp = ch.codePointAt(0)!;
      if (!isPrintable(cp) || isBreak(ch) || ch === '"' || ch === '\\') {
        const named = ESCAPES[cp];
        const hex = cp.toString(16).toUpperCase();
        const escape = named !== undefined ? named
          : cp <= 0xff ? 'x' + hex.padStart(2, '0') : cp <= 0xffff ? 'u' + hex.padStart(4, '0') : 'U' + hex.padStart(8, '0');
        for (const c of '\\' + escape) this.put(c);
        spaces = false;
      } else if (ch === ' ') {
        if (!spaces && this.column > BEST_WIDTH && i !== 0 && i !== t.length - 1) {
          this.indent();
          if (t[i + 1] === ' ') this.put('\\');
        } else this.put(ch);
        spaces = true;
      } else {
        this.put(ch);
        spaces = false;
      }
    }
    this.indicator('"', false);
  }
}

/** One `key: value` pair's value text, as PyYAML writes it after `key:` at the given column. */
export function emitValue(value: FlatYamlValue, startColumn: number): string {
  if (value === null) return ' null';
  if (typeof value === 'boolean') return value ? ' true' : ' false';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`pyyaml: only integers are supported, got ${value}`);
    return ' ' + String(value);
  }
  if (Array.isArray(value)) {
    if (value.length > 0) throw new Error('pyyaml: only empty lists are supported');
    return ' []';
  }
  const chars = [...(value as string)];
  const analysis = analyzeScalar(chars);
  const writer = new ScalarWriter(startColumn);
  if (!resolvesToNonString(value as string) && analysis.allowBlockPlain && chars.length > 0) writer.plain(chars);
  else if (analysis.allowSingleQuoted) writer.singleQuoted(chars);
  else writer.doubleQuoted(chars);
  return writer.out;
}

/** `yaml.safe_dump(mapping, default_flow_style=False, allow_unicode=True, sort_keys=True)`. */
export function dumpFlatYaml(mapping: Record<string, FlatYamlValue>): string {
  const keys = Object.keys(mapping).sort();
  let out = '';
  for (const key of keys) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`pyyaml: unsupported key ${JSON.stringify(key)}`);
    // `key:` leaves the column at key length + 1 before the value starts.
    out += key + ':' + emitValue(mapping[key]!, key.length + 1) + '\n';
  }
  return out;
}
