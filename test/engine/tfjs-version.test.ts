/**
 * TF.js is pinned to the release the engine patches reach into: package.json, the lock file and
 * the installed packages all say PATCHED_TFJS_VERSION, and start-up refuses any other version with
 * a message naming both (initEngine running the check: tfjs-version-startup.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { PATCHED_TFJS_VERSION, checkTfjsVersions, loadedTfjsVersions } from '../../src/engine/tfjs-version.js';
import { packagePath } from '../../src/paths.js';

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

test('package.json and the lock file pin every @tensorflow package to exactly the patched version, and that is what is installed', () => {
  const pkg = readJson(packagePath('package.json')) as { dependencies: Record<string, string> };
  const pinned = Object.entries(pkg.dependencies).filter(([name]) => name.startsWith('@tensorflow/'));
  expect(pinned.map(([name]) => name).sort()).toEqual(['@tensorflow/tfjs', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core']);
  for (const [name, range] of pinned) {
    expect({ name, range }).toEqual({ name, range: PATCHED_TFJS_VERSION });
    const lock = readJson(packagePath('package-lock.json')) as { packages: Record<string, { dependencies?: Record<string, string>; version?: string }> };
    expect({ name, root: lock.packages['']!.dependencies![name] }).toEqual({ name, root: PATCHED_TFJS_VERSION });
    expect({ name, locked: lock.packages[`node_modules/${name}`]!.version }).toEqual({ name, locked: PATCHED_TFJS_VERSION });
    const installed = readJson(join(packagePath('node_modules'), name, 'package.json')) as { version: string };
    expect({ name, installed: installed.version }).toEqual({ name, installed: PATCHED_TFJS_VERSION });
  }
});

test('the loaded TF.js passes the start-up check', () => {
  expect(Object.values(loadedTfjsVersions())).toEqual([PATCHED_TFJS_VERSION, PATCHED_TFJS_VERSION, PATCHED_TFJS_VERSION]);
  expect(() => checkTfjsVersions()).not.toThrow();
});

test('another version is refused with a message naming both versions and the install command', () => {
  const loaded = { ...loadedTfjsVersions(), '@tensorflow/tfjs-core': '4.23.0' };
  expect(() => checkTfjsVersions(loaded)).toThrow(UserError);
  expect(() => checkTfjsVersions(loaded)).toThrow(
    "@tensorflow/tfjs-core 4.23.0 is loaded, but rlhf-kit's engine patches (src/engine/backprop.ts, src/engine/wasm/patches.ts) " +
      `were written for TF.js ${PATCHED_TFJS_VERSION}; install that version: npm install @tensorflow/tfjs-core@${PATCHED_TFJS_VERSION}`,
  );
});
