import { dirname, join } from 'node:path';
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
