import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/** The package root (the folder holding package.json), whether running from src/ (tests) or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('rlhf-kit: cannot locate package root from ' + import.meta.url);
}

/** A path inside the package (configs/, data/, assets/). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** A relative path that does not exist from the working directory is looked up inside the package (shipped data). */
export function resolveDataPath(path: string): string {
  if (isAbsolute(path) || existsSync(path)) return path;
  const shipped = packagePath(path);
  return existsSync(shipped) ? shipped : path;
}
