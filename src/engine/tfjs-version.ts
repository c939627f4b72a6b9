/**
 * The TF.js version the engine's patches were written for. `backprop.ts` replaces private methods
 * of tfjs-core's Engine (its gradient walk and what it saves for the backward pass) and
 * `wasm/patches.ts` replaces kernels of tfjs-backend-wasm, reading their internals; another release
 * can change those without notice, giving wrong gradients rather than an error. So package.json
 * pins these packages to exactly this version, and start-up refuses any other.
 */
import * as tf from '@tensorflow/tfjs-core';
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../errors.js';

export const PATCHED_TFJS_VERSION = '4.22.0';

/** The TF.js packages whose versions must match (name → version loaded). */
export function loadedTfjsVersions(): Record<string, string> {
  return {
    '@tensorflow/tfjs-core': tf.version_core,
    '@tensorflow/tfjs-backend-cpu': version_cpu,
    '@tensorflow/tfjs-backend-wasm': version_wasm,
  };
}

/** Throw a UserError naming each loaded package whose version is not {@link PATCHED_TFJS_VERSION}. */
export function checkTfjsVersions(loaded: Record<string, string> = loadedTfjsVersions(), expected = PATCHED_TFJS_VERSION): void {
  const wrong = Object.entries(loaded).filter(([, v]) => v !== expected);
  if (wrong.length === 0) return;
  throw new UserError(
    `${wrong.map(([name, v]) => `${name} ${v}`).join(', ')} is loaded, but rlhf-kit's engine patches ` +
      `(src/engine/backprop.ts, src/engine/wasm/patches.ts) were written for TF.js ${expected}; ` +
      `install that version: npm install ${wrong.map(([name]) => `${name}@${expected}`).join(' ')}`,
  );
}
