/**
 * Command-line overrides: `optim.lr=3e-4` sets a key (the value is read as a YAML scalar, or a
 * flow list/map when it starts with `[` or `{`), `~lora.dropout` deletes one (the key then falls
 * back to its default). Numeric segments index lists: `data.files.0=a.jsonl`.
 */
import { parse as parseYaml } from 'yaml';
import { shortYamlMessage } from './yaml-source.js';
import { dottedKey, type ConfigLocation, type ConfigProblem } from './problems.js';

export type Override =
  | { kind: 'set'; text: string; index: number; path: string[]; value: unknown }
  | { kind: 'delete'; text: string; index: number; path: string[] };

export interface OverrideResult {
  data: Record<string, unknown>;
  /** Dotted path → the override that last set or deleted it (for locating problems). */
  origins: Map<string, ConfigLocation>;
  problems: ConfigProblem[];
}

const KEY_PATH = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const NULL_WORDS = new Set(['null', 'Null', 'NULL', '~']);

/** Read an override's value: a YAML scalar (`3e-4` → number, `true` → boolean, `null`), or a flow collection. */
export function parseOverrideValue(text: string): unknown {
  if (text === '') return '';
  const value: unknown = parseYaml(text);
  const isCollection = value !== null && typeof value === 'object';
  if (isCollection && !/^[[{]/.test(text.trim())) return text; // `a: b` or `- x`: meant as text
  if (value === null && !NULL_WORDS.has(text.trim())) return text; // `#1` would parse as a comment
  return value;
}

/** Parse one `key=value` / `~key` argument; a malformed one is returned as a problem. */
export function parseOverride(text: string, index: number): Override | ConfigProblem {
  const where: ConfigLocation = { kind: 'override', text, index };
  const problem = (message: string): ConfigProblem => ({ where, key: '', message });
  if (text.startsWith('~')) {
    const key = text.slice(1);
    if (key.includes('=')) return problem('a deletion is `~key` alone, without `=value`');
    if (!KEY_PATH.test(key)) return problem(`'${key}' is not a dotted key path like optim.lr`);
    return { kind: 'delete', text, index, path: key.split('.') };
  }
  const eq = text.indexOf('=');
  if (eq < 0) return problem('expected key=value (or ~key to delete a key)');
  const key = text.slice(0, eq);
  if (!KEY_PATH.test(key)) return problem(`'${key}' is not a dotted key path like optim.lr`);
  try {
    return { kind: 'set', text, index, path: key.split('.'), value: parseOverrideValue(text.slice(eq + 1)) };
  } catch (e) {
    return { where, key, message: `value is not valid YAML: ${shortYamlMessage((e as Error).message)}` };
  }
}

type Container = Record<string, unknown> | unknown[];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function listIndex(list: unknown[], seg: string, allowAppend: boolean): number | undefined {
  if (!/^\d+$/.test(seg)) return undefined;
  const i = Number(seg);
  return i < list.length || (allowAppend && i === list.length) ? i : undefined;
}

/** Apply overrides, in order, to a copy of `data`; problems name the override that caused them. */
export function applyOverrides(data: unknown, overrides: readonly string[]): OverrideResult {
  const root: Record<string, unknown> = isPlainObject(data) ? structuredClone(data) : {};
  const origins = new Map<string, ConfigLocation>();
  const problems: ConfigProblem[] = [];
  overrides.forEach((text, index) => {
    const o = parseOverride(text, index);
    if (!('kind' in o)) {
      problems.push(o);
      return;
    }
    const where: ConfigLocation = { kind: 'override', text, index };
    const fail = (message: string): void => {
      problems.push({ where, key: dottedKey(o.path), message });
    };
    // Walk to the parent of the last segment, creating sections on the way for `set`.
    let node: Container = root;
    for (let i = 0; i < o.path.length - 1; i++) {
      const seg = o.path[i] as string;
      const here = dottedKey(o.path.slice(0, i + 1));
      if (Array.isArray(node)) {
        const at = listIndex(node, seg, false);
        if (at === undefined) return fail(`${here}: no item ${seg} in a list of ${node.length}`);
        const next: unknown = node[at];
        if (!isPlainObject(next) && !Array.isArray(next)) return fail(`${here} is a ${typeof next}, not a section`);
        node = next;
        continue;
      }
      const next: unknown = node[seg];
      if (next === undefined || next === null) {
        if (o.kind === 'delete') return; // nothing there to delete
        node[seg] = {};
        node = node[seg] as Record<string, unknown>;
      } else if (isPlainObject(next) || Array.isArray(next)) {
        node = next;
      } else {
        return fail(`${here} is a ${typeof next}, not a section`);
      }
    }
    const last = o.path[o.path.length - 1] as string;
    if (Array.isArray(node)) {
      const at = listIndex(node, last, o.kind === 'set');
      if (at === undefined) return fail(`no item ${last} in a list of ${node.length}`);
      if (o.kind === 'set') node[at] = o.value;
      else node.splice(at, 1);
    } else if (o.kind === 'set') {
      node[last] = o.value;
    } else {
      delete node[last];
    }
    // A later override of a parent or a child replaces what an earlier one said about that path.
    const key = dottedKey(o.path);
    for (const k of [...origins.keys()]) if (k.startsWith(key + '.')) origins.delete(k);
    origins.set(key, where);
  });
  return { data: root, origins, problems };
}

/** The override that set `path` or one of its parents, if any. */
export function overrideOrigin(
  origins: ReadonlyMap<string, ConfigLocation>,
  path: readonly (string | number)[],
): ConfigLocation | undefined {
  for (let n = path.length; n > 0; n--) {
    const hit = origins.get(dottedKey(path.slice(0, n)));
    if (hit !== undefined) return hit;
  }
  return undefined;
}
