import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildFixtures, FIXTURES_DIR } from '../fixtures/tokenizers/build.js';

// The checked-in fixtures are exactly what build.ts makes (for the trained one: the trainer is
// deterministic, so retraining on corpus.txt reproduces the file byte for byte).
test('tokenizer fixtures on disk match test/fixtures/tokenizers/build.ts', async () => {
  const files = await buildFixtures();
  expect(files.size).toBe(6);
  for (const [name, content] of files) {
    const path = join(FIXTURES_DIR, name);
    if (process.env.UPDATE_FIXTURES === '1') {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    }
    expect(await readFile(path, 'utf8')).toBe(content);
  }
});
