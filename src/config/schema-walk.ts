/**
 * Read a zod schema as data: which keys a section has, each key's type, default and help text.
 * The schema is the single source of defaults and help; everything users see about a key
 * (did-you-mean, `--help`, the README tables, filled-in defaults) is read from it here.
 */
import { z } from 'zod';

/** A schema with its wrappers (default, optional, nullable, …) peeled off. */
export interface PeeledSchema {
  /** The schema inside every wrapper: object, number, enum, … */
  core: z.ZodType;
  /** The outermost `.describe()` text met while peeling. */
  description?: string;
  /** The outermost `.default()` / `.prefault()` value met while peeling. */
  default?: { value: unknown };
  optional: boolean;
  nullable: boolean;
}

/** One key of a (nested) object schema, `path` from the root. */
export interface SchemaKey {
  path: string[];
  schema: z.ZodType;
  peeled: PeeledSchema;
  /** True for nested sections (objects), false for leaf values. */
  isSection: boolean;
}

// Checks as zod v4 stores them on a number schema (`_zod.def.checks[i]._zod.def`).
interface NumberCheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
}

export function peel(schema: z.ZodType): PeeledSchema {
  const out: PeeledSchema = { core: schema, optional: false, nullable: false };
  let s: z.ZodType = schema;
  for (let depth = 0; depth < 32; depth++) {
    if (out.description === undefined && s.description !== undefined) out.description = s.description;
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      out.default ??= { value: s.def.defaultValue };
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodOptional) {
      out.optional = true;
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodNullable) {
      out.nullable = true;
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodReadonly || s instanceof z.ZodCatch || s instanceof z.ZodNonOptional) {
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      // Users write the input side of a pipe (transforms happen after validation).
      s = s.def.in as z.ZodType;
    } else if (s instanceof z.ZodLazy) {
      s = s.def.getter() as z.ZodType;
    } else {
      break;
    }
  }
  out.core = s;
  return out;
}

/** The shape of an object schema (after peeling), or undefined when it is not an object. */
export function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const core = peel(schema).core;
  return core instanceof z.ZodObject ? (core.shape as Record<string, z.ZodType>) : undefined;
}

/** The schema that validates the value at `path` (numeric segments index lists), if the schema says. */
export function schemaAt(schema: z.ZodType, path: readonly (string | number)[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    if (s === undefined) return undefined;
    const core: z.ZodType = peel(s).core;
    if (core instanceof z.ZodObject) s = (core.shape as Record<string, z.ZodType>)[String(seg)];
    else if (core instanceof z.ZodArray) s = core.def.element as z.ZodType;
    else if (core instanceof z.ZodTuple) s = core.def.items[Number(seg)] as z.ZodType | undefined;
    else if (core instanceof z.ZodRecord) s = core.def.valueType as z.ZodType;
    else if (core instanceof z.ZodUnion) {
      const options = core.def.options as z.ZodType[];
      s = options.map((o) => schemaAt(o, [seg])).find((x) => x !== undefined);
    } else return undefined;
  }
  return s;
}

/** Every key of a nested object schema, sections before their children, in declaration order. */
export function schemaKeys(schema: z.ZodType, prefix: string[] = []): SchemaKey[] {
  const shape = objectShape(schema);
  if (shape === undefined) return [];
  const keys: SchemaKey[] = [];
  for (const [name, child] of Object.entries(shape)) {
    const path = [...prefix, name];
    const peeled = peel(child);
    const isSection = peeled.core instanceof z.ZodObject;
    keys.push({ path, schema: child, peeled, isSection });
    if (isSection) keys.push(...schemaKeys(child, path));
  }
  return keys;
}

/** `> 0`, `>= 1`, or `in [0, 1)` when bounded on both sides. */
function numberBounds(core: z.ZodType): string {
  const checks = (core._zod.def as { checks?: { _zod: { def: NumberCheckDef } }[] }).checks ?? [];
  let lower: NumberCheckDef | undefined;
  let upper: NumberCheckDef | undefined;
  for (const c of checks) {
    const d = c._zod.def;
    if (d.check === 'greater_than') lower = d;
    if (d.check === 'less_than') upper = d;
  }
  if (lower !== undefined && upper !== undefined) {
    return `in ${lower.inclusive ? '[' : '('}${lower.value}, ${upper.value}${upper.inclusive ? ']' : ')'}`;
  }
  if (lower !== undefined) return `${lower.inclusive ? '>=' : '>'} ${lower.value}`;
  if (upper !== undefined) return `${upper.inclusive ? '<=' : '<'} ${upper.value}`;
  return '';
}

/** A short human type label: `number > 0`, `integer >= 1`, `cosine | linear`, `[number, number]`, `string | null`. */
export function typeLabel(schema: z.ZodType): string {
  const { core, nullable } = peel(schema);
  let label: string;
  if (core instanceof z.ZodNumber) {
    const base = core.isInt ? 'integer' : 'number';
    label = [base, numberBounds(core)].filter((x) => x !== '').join(' ');
  } else if (core instanceof z.ZodString) label = 'string';
  else if (core instanceof z.ZodBoolean) label = 'boolean';
  else if (core instanceof z.ZodEnum) label = (core.options as unknown[]).map(String).join(' | ');
  else if (core instanceof z.ZodLiteral) label = [...core.def.values].map((v) => JSON.stringify(v)).join(' | ');
  else if (core instanceof z.ZodArray) label = `list of ${typeLabel(core.def.element as z.ZodType)}`;
  else if (core instanceof z.ZodTuple) label = `[${(core.def.items as z.ZodType[]).map(typeLabel).join(', ')}]`;
  else if (core instanceof z.ZodUnion) label = (core.def.options as z.ZodType[]).map(typeLabel).join(' | ');
  else if (core instanceof z.ZodRecord) label = `map of ${typeLabel(core.def.valueType as z.ZodType)}`;
  else if (core instanceof z.ZodObject) label = 'section';
  else label = core._zod.def.type;
  return nullable ? `${label} | null` : label;
}
