/**
 * An engine's arguments for one stage, each tied to the rlhf-kit key it comes from, so the
 * generated script or command line and MAPPING.md are written from the same list and cannot
 * disagree. Keys with no equivalent are recorded as gaps with what the user should know.
 */
export type ArgValue = string | number | boolean | readonly (string | number)[] | null;

export interface Arg {
  name: string;
  value: ArgValue;
}

export interface MappingRow {
  /** Our key (dotted), or '' for something the engine needs that we derive. */
  ours: string;
  ourValue: string;
  /** Their argument, or '—' for a gap. */
  theirs: string;
  note: string;
}

export function show(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  // A value the shell expands is marked with a leading NUL (see openrlhf.ts); MAPPING.md shows it plain.
  if (typeof value === 'string') return value.replace(/^\u0000/, '');
  return JSON.stringify(value);
}

export class ArgList {
  readonly args: Arg[] = [];
  readonly mapping: MappingRow[] = [];

  /** Their argument `name` = `value`, from our `ours` (= `ourValue`). */
  set(ours: string, ourValue: unknown, name: string, value: ArgValue, note = ''): this {
    const existing = this.args.findIndex((a) => a.name === name);
    if (existing >= 0) this.args.splice(existing, 1);
    this.args.push({ name, value });
    this.mapping.push({ ours, ourValue: show(ourValue), theirs: `${name} = ${show(value)}`, note });
    return this;
  }

  /** Our key has no equivalent argument: say what happens instead. */
  gap(ours: string, ourValue: unknown, note: string): this {
    this.mapping.push({ ours, ourValue: show(ourValue), theirs: '—', note });
    return this;
  }

  get(name: string): ArgValue | undefined {
    return this.args.find((a) => a.name === name)?.value;
  }
}

/** Python literal of an argument value. */
export function pyLiteral(v: ArgValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return JSON.stringify(v);
  return `[${v.map((x) => (typeof x === 'number' ? pyNumber(x) : JSON.stringify(x))).join(', ')}]`;
}

function pyNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(n).replace(/e([+-]?)(\d)$/, 'e$1$2');
}

/** Shell-quote one word (single quotes; none when it is plain). */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
