/**
 * initEngine refuses a TF.js release other than the one its patches were written for, before it
 * installs anything. Its own file: the mocked package must be in place before any module of the
 * engine is loaded, so everything here is imported after the mock.
 */
import { jest } from '@jest/globals';

test('initEngine with a tfjs-backend-cpu of another release: a UserError naming both versions', async () => {
  // A tfjs-backend-cpu that reports another release; everything else is the real package.
  const real = await import('@tensorflow/tfjs-backend-cpu');
  jest.unstable_mockModule('@tensorflow/tfjs-backend-cpu', () => ({ ...real, version_cpu: '4.21.0' }));
  const { initEngine, PATCHED_TFJS_VERSION } = await import('../../src/engine/index.js');
  const { UserError } = await import('../../src/errors.js');
  const { leanBackpropInstalled } = await import('../../src/engine/backprop.js');
  const err = await initEngine({ backend: 'cpu' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toBe(
    `@tensorflow/tfjs-backend-cpu 4.21.0 is loaded, but rlhf-kit's engine patches (src/engine/backprop.ts, src/engine/wasm/patches.ts) ` +
      `were written for TF.js ${PATCHED_TFJS_VERSION}; install that version: npm install @tensorflow/tfjs-backend-cpu@${PATCHED_TFJS_VERSION}`,
  );
  expect(leanBackpropInstalled()).toBe(false); // refused before any patch went in
});
