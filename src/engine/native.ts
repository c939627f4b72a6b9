import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';

/**
 * The native TensorFlow backend (`tensorflow`): @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node.
 * Never a dependency — their install downloads libtensorflow — so they are loaded with a dynamic
 * `import()` of a computed name (TypeScript then does not look for their types either).
 */
export const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export interface NativeBackend {
  packageName: string;
  version: string;
}

/** Import the first native package that is installed; null when none is. Other load errors throw. */
export async function importNativeBackend(): Promise<NativeBackend | null> {
  for (const packageName of NATIVE_PACKAGES) {
    let mod: { version?: Record<string, string> };
    try {
      mod = (await import(packageName)) as typeof mod;
    } catch (e) {
      if (isModuleNotFound(e, packageName)) continue;
      throw new UserError(
        `engine.backend: ${packageName} is installed but failed to load: ${(e as Error).message}`,
        { cause: e },
      );
    }
    // The package registers its backend on the tfjs-core it resolves; a second copy of tfjs-core
    // (version mismatch) would register it where we cannot see it.
    if (tf.findBackendFactory('tensorflow') === null) {
      throw new UserError(
        `engine.backend: ${packageName} loaded but registered no 'tensorflow' backend with ` +
        `@tensorflow/tfjs-core ${tf.version_core}; install the matching version: ` +
        `npm install ${packageName}@${tf.version_core}`,
      );
    }
    return { packageName, version: mod.version?.['tfjs-node'] ?? 'unknown' };
  }
  return null;
}

export function nativeInstallHint(): string {
  return `engine.backend: tensorflow needs @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu ` +
    `(CUDA), which are not installed. Install one with \`npm install @tensorflow/tfjs-node@${tf.version_core}\` ` +
    `(or tfjs-node-gpu; the install downloads libtensorflow, so it needs internet), ` +
    `or use engine.backend: wasm.`;
}

function isModuleNotFound(e: unknown, packageName: string): boolean {
  const err = e as { code?: string; message?: string };
  return (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') &&
    (err.message ?? '').includes(packageName);
}
