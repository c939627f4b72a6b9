/**
 * `${key.path}` interpolation between config values: `output_dir: runs/${run.name}/sft`.
 * A value that is exactly one reference keeps the referenced value's type (`steps: ${train.steps}`
 * stays a number); references inside longer text are spliced in as text. `$${` writes a literal `${`.
 */
import { closestMatch } from './suggest.js';
import { dottedKey } from './problems.js';

export type KeyPath = (string | number)[];

/** A problem at a key path, before it is located in a file or an override. */
export interface KeyProblem {
  path: KeyPath;
  message: string;
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean;
}

export interface InterpolationResult {
  value: Record<string, unknown>;
  problems: KeyProblem[];
  /** Paths whose value could not be resolved (directly or through a reference). */
  failed: Set<string>;
}

const WHOLE_REF = /^\$\{([^${}]+)\}$/;
const ANY_REF = /\$\$\{|\$\{([^${}]*)\}/g;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function getIn(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const seg of path) {
    if (Array.isArray(node)) node = node[Number(seg)];
    else if (isPlainObject(node)) node = node[String(seg)];
    else return undefined;
  }
  return node;
}

/** Every dotted key path in the data (sections and leaves; lists are not entered). */
function dottedPaths(node: unknown, prefix = ''): string[] {
  if (!isPlainObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) => {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    return [p, ...dottedPaths(v, p)];
  });
}

/** Resolve every `${...}` in `root`; unresolvable references are reported and left as written. */
export function interpolate(root: Record<string, unknown>): InterpolationResult {
  const memo = new Map<string, unknown>();
  const problems: KeyProblem[] = [];
  const failed = new Set<string>();

  // Resolve the reference `ref` met while resolving `path`; undefined when it cannot be.
  const follow = (ref: string, path: KeyPath, stack: string[]): unknown => {
    const target = ref.trim();
    const here = dottedKey(path);
    if (target !== '' && stack.includes(target)) {
      problems.push({ path, message: `circular reference: ${[...stack.slice(stack.indexOf(target)), target].join(' → ')}` });
      return undefined;
    }
    const targetPath = target.split('.');
    if (target === '' || getIn(root, targetPath) === undefined) {
      const guess = closestMatch(target, dottedPaths(root));
      const hint = guess === undefined ? '' : ` (did you mean \${${guess}}?)`;
      problems.push({ path, message: `unknown reference \${${ref}}${hint}` });
      return undefined;
    }
    const value = resolveAt(targetPath, stack);
    if (failed.has(target)) {
      failed.add(here); // already reported where it failed
      return undefined;
    }
    return value;
  };

  const resolveString = (text: string, path: KeyPath, stack: string[]): unknown => {
    if (!text.includes('${')) return text;
    const whole = WHOLE_REF.exec(text);
    if (whole?.[1] !== undefined) {
      const value = follow(whole[1], path, stack);
      return value === undefined ? text : value;
    }
    let ok = true;
    const out = text.replace(ANY_REF, (match, ref: string | undefined) => {
      if (ref === undefined) return '${'; // `$${` escape
      const value = follow(ref, path, stack);
      if (value === undefined) {
        ok = false;
        return match;
      }
      if (value !== null && typeof value === 'object') {
        problems.push({ path, message: `\${${ref}} is a list or section; it can only be used as the whole value` });
        ok = false;
        return match;
      }
      return String(value);
    });
    if (!ok) failed.add(dottedKey(path));
    return out;
  };

  const resolveAt = (path: KeyPath, stack: string[]): unknown => {
    const key = dottedKey(path);
    if (memo.has(key)) return memo.get(key);
    const inner = [...stack, key];
    const raw = getIn(root, path);
    let out: unknown;
    if (typeof raw === 'string') {
      out = resolveString(raw, path, inner);
      if (out === raw && raw.includes('${')) failed.add(key);
    } else if (Array.isArray(raw)) {
      out = raw.map((_, i) => resolveAt([...path, i], inner));
    } else if (isPlainObject(raw)) {
      out = Object.fromEntries(Object.keys(raw).map((k) => [k, resolveAt([...path, k], inner)]));
    } else {
      out = raw;
    }
    memo.set(key, out);
    return out;
  };

  const value = resolveAt([], []) as Record<string, unknown>;
  return { value, problems, failed };
}
