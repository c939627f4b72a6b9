/**
 * A YAML config file parsed with positions kept, so any key path can be traced back to the
 * line and column the user wrote it at.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { UserError } from '../errors.js';
import { ConfigError, type ConfigLocation, type ConfigProblem } from './problems.js';

export interface YamlSource {
  /** The file name as the user gave it (shown in messages). */
  file: string;
  /** The document as plain data (maps → objects, sequences → arrays). */
  data: unknown;
  /**
   * Where `path` was written. `key: true` points at the key itself (for unknown keys) rather than
   * its value. A path the file does not contain resolves to its nearest written ancestor.
   */
  locate(path: readonly (string | number)[], opts?: { key?: boolean }): ConfigLocation;
}

// yaml's messages end with " at line L, column C:" and a code snippet; we print our own position.
export function shortYamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

/** Parse YAML text; syntax errors (all of them) throw a `ConfigError` with their positions. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) {
    const problems: ConfigProblem[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      return { where: { kind: 'file', file, line: pos.line, col: pos.col }, key: '', message: shortYamlMessage(e.message) };
    });
    throw new ConfigError(problems, file);
  }
  const position = (offset: number): ConfigLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { kind: 'file', file, line, col };
  };
  return {
    file,
    data: doc.toJS() as unknown,
    locate: (path, opts = {}) => locateIn(doc, path, opts.key === true, position),
  };
}

/** Read and parse a config file; a missing file is a `UserError` naming it. */
export function readYamlSource(file: string): YamlSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : String(e);
    throw new UserError(`${file}: cannot read config: ${why}`);
  }
  return parseYamlSource(text, file);
}

function locateIn(
  doc: Document,
  path: readonly (string | number)[],
  wantKey: boolean,
  position: (offset: number) => ConfigLocation,
): ConfigLocation {
  // Walk down as far as the file goes. A value the file lacks is reported at the key of the
  // section that should hold it (`data:`), the nearest place the user can fix it.
  let node: unknown = doc.contents;
  let best = position(0);
  let holder = best;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return holder;
      const keyNode = pair.key as Node;
      const valueNode = pair.value as Node | null;
      if (keyNode.range) best = holder = position(keyNode.range[0]);
      if (last && wantKey) return best;
      // An empty value (`lr:`) has a zero-width range at the line's end; the key is the better spot.
      if (valueNode?.range && valueNode.range[1] > valueNode.range[0]) best = position(valueNode.range[0]);
      node = valueNode;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (item === undefined) return holder;
      if (item.range) best = holder = position(item.range[0]);
      node = item;
    } else {
      return holder;
    }
  }
  return best;
}
