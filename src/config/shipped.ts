/**
 * The configs shipped under `configs/<stage>/*.yaml`: listed by `rlhf ls`, copied by `rlhf cp`,
 * and accepted by name (`sft/tiny_lora`) wherever a config path is.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { UserError } from '../errors.js';
import { packagePath } from '../paths.js';
import { closestMatch } from './suggest.js';

export interface ShippedConfig {
  /** `sft/tiny_lora`: the path under configs/ without `.yaml`. */
  name: string;
  path: string;
  /** First line of the file's header comment. */
  summary: string;
}

export function shippedConfigsRoot(): string {
  return packagePath('configs');
}

/** The first line of the comment block a config starts with ('' when it has none). */
export function headerSummary(text: string): string {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === '#') continue;
    if (!line.startsWith('#')) return '';
    return line.replace(/^#+\s*/, '');
  }
  return '';
}

function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) // code-point order: same on every machine
    .flatMap((e) => {
      const full = join(dir, e.name);
      if (e.isDirectory()) return yamlFiles(full);
      return /\.ya?ml$/.test(e.name) ? [full] : [];
    });
}

export function listShippedConfigs(root: string = shippedConfigsRoot()): ShippedConfig[] {
  return yamlFiles(root).map((path) => ({
    name: relative(root, path).split(sep).join('/').replace(/\.ya?ml$/, ''),
    path,
    summary: headerSummary(readFileSync(path, 'utf8')),
  }));
}

/**
 * A config file from a path or a shipped config's name (`sft/tiny_lora`, `sft/tiny_lora.yaml`, or
 * `tiny_lora` when only one shipped config has that file name). An existing path wins.
 */
export function findConfig(nameOrPath: string, root: string = shippedConfigsRoot()): string {
  if (existsSync(nameOrPath) && statSync(nameOrPath).isFile()) return nameOrPath;
  const shipped = listShippedConfigs(root);
  const name = nameOrPath.replace(/\.ya?ml$/, '');
  const exact = shipped.find((c) => c.name === name);
  if (exact !== undefined) return exact.path;
  const byBase = shipped.filter((c) => c.name.split('/').pop() === name);
  if (byBase.length === 1 && byBase[0] !== undefined) return byBase[0].path;
  if (byBase.length > 1) {
    throw new UserError(`${nameOrPath}: several shipped configs have this name: ${byBase.map((c) => c.name).join(', ')}`);
  }
  const guess = closestMatch(name, shipped.map((c) => c.name));
  const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
  throw new UserError(`${nameOrPath}: no such file, nor a shipped config of that name${hint}; 'rlhf ls' lists them`);
}
