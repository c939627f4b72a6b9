import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import yargs from 'yargs';
import { tokenizerCommand } from '../../src/cli/tokenizer.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

/** Parse with only the tokenizer command registered, failures thrown (main.ts turns them into exit 2). */
async function cli(argv: string[]): Promise<void> {
  await yargs(argv)
    .command(tokenizerCommand)
    .strict()
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new Error(message);
    })
    .parseAsync();
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rlhf-tok-cli-'));
  await writeFile(join(dir, 'a.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(30));
  await writeFile(join(dir, 'b.txt'), 'the lazy dog sleeps; the fox runs.\n'.repeat(30));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('rlhf tokenizer train --corpus A B --vocab-size N --out DIR writes a loadable tokenizer', async () => {
  const log = jest.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const out = join(dir, 'tok');
    await cli(['tokenizer', 'train', '--corpus', join(dir, 'a.txt'), join(dir, 'b.txt'), '--vocab-size', '300', '--out', out]);
    expect(log.mock.calls[0]?.[0]).toMatch(/vocabulary 300 \(39 merges\)/);
    const tok = await loadTokenizer(out);
    expect(tok.vocabSize).toBe(300);
    expect(tok.decode(tok.encode('the lazy fox'), { skipSpecialTokens: true })).toBe('the lazy fox');
  } finally {
    log.mockRestore();
  }
});

test('a missing corpus file is a UserError naming it', async () => {
  await expect(cli(['tokenizer', 'train', '--corpus', join(dir, 'nope.txt'), '--vocab-size', '300', '--out', join(dir, 'x')])).rejects.toMatchObject({
    name: 'UserError',
    exitCode: 2,
    message: expect.stringContaining('nope.txt'),
  });
});
