/**
 * zod issues → plain-language problems at key paths: `expected number, received string`,
 * `must be > 0, received -0.001`, `unknown key (did you mean optim.lr?)`.
 */
import type { z } from 'zod';
import { dottedKey } from './problems.js';
import { closestMatch } from './suggest.js';
import { objectShape, schemaAt, schemaKeys, typeLabel } from './schema-walk.js';
import type { KeyPath, KeyProblem } from './interpolate.js';

type Issue = z.core.$ZodIssue;

function getIn(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[seg];
  }
  return node;
}

/** The YAML-level type of a value, as users know it. */
export function valueKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'section';
  return typeof v;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * The nearest valid key for an unknown `key` under `parent`: a sibling within typo distance, else a key
 * of the same name (or nearly) in another section (`train.lr` → `optim.lr`). Returned as a full dotted path.
 */
export function suggestKey(schema: z.ZodType, parent: KeyPath, key: string): string | undefined {
  const parentSchema = schemaAt(schema, parent);
  const siblings = parentSchema === undefined ? [] : Object.keys(objectShape(parentSchema) ?? {});
  const sibling = closestMatch(key, siblings);
  if (sibling !== undefined) return dottedKey([...parent, sibling]);
  const elsewhere = schemaKeys(schema).map((k) => k.path);
  const lastNames = elsewhere.map((p) => p[p.length - 1] ?? '');
  const hit = closestMatch(key, lastNames);
  if (hit === undefined) return undefined;
  const full = elsewhere[lastNames.indexOf(hit)];
  return full === undefined ? undefined : full.join('.');
}

function boundMessage(issue: Issue & { code: 'too_small' | 'too_big' }, value: unknown): string {
  const small = issue.code === 'too_small';
  const limit = small ? issue.minimum : issue.maximum;
  const inclusive = issue.inclusive ?? true;
  if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') {
    const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
    return `must be ${op} ${String(limit)}, received ${show(value)}`;
  }
  const unit = issue.origin === 'string' ? 'characters' : 'items';
  const n = Number(limit) + (inclusive ? 0 : small ? 1 : -1);
  return `must have ${small ? 'at least' : 'at most'} ${n} ${unit}`;
}

/** One zod issue → problems (an unrecognized-keys issue gives one problem per key). */
export function issueToProblems(issue: Issue, schema: z.ZodType, data: unknown): KeyProblem[] {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  const value = getIn(data, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const guess = suggestKey(schema, path, key);
        const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
        return { path: [...path, key], message: `unknown key${hint}`, atKey: true };
      });
    case 'invalid_type': {
      const expected = issue.expected === 'int' ? 'integer' : issue.expected;
      if (value === undefined) return [{ path, message: `missing (expected ${expected})` }];
      const received = issue.expected === 'int' && typeof value === 'number' ? show(value) : valueKind(value);
      return [{ path, message: `expected ${expected}, received ${received}` }];
    }
    case 'too_small':
    case 'too_big':
      return [{ path, message: boundMessage(issue, value) }];
    case 'invalid_value': {
      const options = issue.values.map((v) => String(v));
      const guess = typeof value === 'string' ? closestMatch(value, options) : undefined;
      const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
      return [{ path, message: `expected ${options.join(' | ')}, received ${show(value)}${hint}` }];
    }
    case 'invalid_union': {
      const s = schemaAt(schema, path);
      const expected = s === undefined ? 'one of the allowed forms' : typeLabel(s);
      return [{ path, message: `expected ${expected}, received ${value === undefined ? 'nothing' : show(value)}` }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}
