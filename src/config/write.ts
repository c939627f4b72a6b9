/**
 * Write the resolved config into the run folder (`config.resolved.yaml`): every default filled
 * in, overrides applied, references resolved — the exact settings a run used, loadable again.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Document } from 'yaml';
import type { ResolvedConfig } from './load.js';

/** Write to a temporary file beside `path`, then rename: readers never see half a file. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

// Resolved strings may contain a literal `${` (written `$${` in the source); keep it literal on reload.
function escapeReferences(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('${', () => '$${');
  if (Array.isArray(value)) return value.map(escapeReferences);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeReferences(v)]));
  }
  return value;
}

/** The resolved config as YAML: `stage` first, a comment saying where it came from. */
export function resolvedConfigYaml(resolved: ResolvedConfig): string {
  const doc = new Document(escapeReferences({ stage: resolved.stage, ...(resolved.config as object) }));
  const lines = [' Resolved config: defaults filled in, overrides applied, ${...} references resolved.', ` source: ${resolved.file}`];
  if (resolved.overrides.length > 0) lines.push(` overrides: ${resolved.overrides.join(' ')}`);
  doc.commentBefore = lines.join('\n');
  return doc.toString({ lineWidth: 0 });
}

export function writeResolvedConfig(path: string, resolved: ResolvedConfig): void {
  writeFileAtomic(path, resolvedConfigYaml(resolved));
}
