/**
 * Config keys that were renamed: the old spelling keeps working, moved to the new key with a
 * warning, so configs and scripts written for an older release still run.
 */
export const RENAMED_KEYS: ReadonlyArray<{ from: readonly string[]; to: readonly string[] }> = [
  // One non-finite limit for every stage (the harness's), instead of one per stage section.
  { from: ['sft', 'max_nonfinite_steps'], to: ['train', 'max_nonfinite'] },
  { from: ['dpo', 'max_nonfinite_steps'], to: ['train', 'max_nonfinite'] },
];

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Move each old key found in `config` to its new place (in place), returning one warning per key.
 * When both spellings are set, the new one wins and the old one is dropped.
 */
export function renameDeprecatedKeys(config: Tree, file: string): string[] {
  const warnings: string[] = [];
  for (const { from, to } of RENAMED_KEYS) {
    const parent = walk(config, from.slice(0, -1), false);
    const last = from[from.length - 1]!;
    if (!parent || !(last in parent)) continue;
    const value = parent[last];
    delete parent[last];
    const target = walk(config, to.slice(0, -1), true)!;
    const newKey = to[to.length - 1]!;
    const kept = newKey in target;
    if (!kept) target[newKey] = value;
    warnings.push(
      `${file}: ${from.join('.')} is deprecated, use ${to.join('.')}` + (kept ? ` (both are set; ${to.join('.')} is used)` : ` (read as ${to.join('.')}=${JSON.stringify(value)})`),
    );
  }
  return warnings;
}

function walk(tree: Tree, path: readonly string[], create: boolean): Tree | null {
  let node = tree;
  for (const seg of path) {
    const next = node[seg];
    if (isTree(next)) node = next;
    else if (create && (next === undefined || next === null)) node = node[seg] = {};
    else return null;
  }
  return node;
}
