import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countPreTokens, mergePair, trainByteLevelBpe } from '../../src/tokenizer/bpeTrainer.js';
import { BYTE_TO_CHAR, toByteChars } from '../../src/tokenizer/byteLevel.js';
import { loadTokenizer, MIN_VOCAB_SIZE, trainTokenizer } from '../../src/tokenizer/index.js';
import { Rng } from '../../src/engine/rng.js';
import { UserError } from '../../src/errors.js';
import { FIXTURES_DIR } from '../fixtures/tokenizers/build.js';

test('merges of the classic hug/pug/pun/bun/hugs example (hand-computed)', () => {
  const counts = new Map([['hug', 10], ['pug', 5], ['pun', 12], ['bun', 4], ['hugs', 5]]);
  const { merges, symbols } = trainByteLevelBpe(counts, { numSymbols: 300 });
  // u+g 20; u+n 16; h+ug 15; p+un 12; then p+ug and hug+s tie at 5: 'p' (byte 112) < 'hug' (id 258);
  // b+un 4. Then no pair is left.
  expect(merges).toEqual([['u', 'g'], ['u', 'n'], ['h', 'ug'], ['p', 'un'], ['p', 'ug'], ['hug', 's'], ['b', 'un']]);
  expect(symbols.slice(256)).toEqual(['ug', 'un', 'hug', 'pun', 'pug', 'hugs', 'bun']);
  // minPairCount stops before rarer pairs; numSymbols caps the count.
  expect(trainByteLevelBpe(counts, { numSymbols: 300, minPairCount: 5 }).merges).toHaveLength(6);
  expect(trainByteLevelBpe(counts, { numSymbols: 258 }).merges).toEqual([['u', 'g'], ['u', 'n']]);
});

test('mergePair merges left to right without overlap', () => {
  expect(mergePair([1, 1, 1], 1, 1, 9)).toEqual([9, 1]);
  expect(mergePair([1, 1, 1, 1], 1, 1, 9)).toEqual([9, 9]);
  expect(mergePair([2, 1, 3, 1, 3], 1, 3, 9)).toEqual([2, 9, 9]);
});

/** Naive reference: recount every pair of every word from scratch before each merge. */
function referenceMerges(counts: Map<string, number>, numMerges: number, minPairCount: number): Array<[string, string]> {
  const words = [...counts].map(([w, c]) => ({ syms: [...toByteChars(w)], c }));
  const merges: Array<[string, string]> = [];
  const ids = new Map<string, number>();
  BYTE_TO_CHAR.forEach((c, b) => ids.set(c, b));
  while (merges.length < numMerges) {
    const pairs = new Map<string, number>();
    for (const { syms, c } of words) {
      for (let i = 0; i + 1 < syms.length; i++) pairs.set(syms[i] + '\u0000' + syms[i + 1], (pairs.get(syms[i] + '\u0000' + syms[i + 1]) ?? 0) + c);
    }
    let best: [string, string] | undefined;
    let bestCount = 0;
    for (const [key, c] of pairs) {
      const [l, r] = key.split('\u0000') as [string, string];
      const better = c > bestCount || (c === bestCount && best !== undefined &&
        (ids.get(l)! < ids.get(best[0])! || (ids.get(l) === ids.get(best[0]) && ids.get(r)! < ids.get(best[1])!)));
      if (better) [best, bestCount] = [[l, r], c];
    }
    if (!best || bestCount < minPairCount) break;
    merges.push(best);
    ids.set(best[0] + best[1], 256 + merges.length - 1);
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.syms.length; i++) {
        if (i + 1 < word.syms.length && word.syms[i] === best[0] && word.syms[i + 1] === best[1]) out.push(best[0] + best[1]), i++;
        else out.push(word.syms[i]!);
      }
      word.syms = out;
    }
  }
  return merges;
}
test('incremental pair counts give the same merges as recounting from scratch', async () => {
  const counts = new Map<string, number>();
  countPreTokens(await readFile(join(FIXTURES_DIR, 'corpus.txt'), 'utf8'), counts);
  // Repeated letters exercise overlapping pairs (a a a a).
  const rng = new Rng(7);
  const letters = 'aab';
  let synthetic = '';
  for (let w = 0; w < 400; w++) {
    let word = ' ';
    const n = 1 + rng.int(7);
    for (let i = 0; i < n; i++) word += letters[rng.int(letters.length)];
    synthetic += word;
  }
  countPreTokens(synthetic, counts);
  const fast = trainByteLevelBpe(counts, { numSymbols: 256 + 150 }).merges;
  expect(fast.length).toBeGreaterThan(100);
  expect(fast).toEqual(referenceMerges(counts, 150, 2));
});

describe('trainTokenizer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-bpe-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('same corpus → byte-identical files, whatever the order of the corpus files', async () => {
    const corpus = await readFile(join(FIXTURES_DIR, 'corpus.txt'), 'utf8');
    const cut = corpus.indexOf('\n', corpus.length / 2) + 1;
    await writeFile(join(dir, 'a.txt'), corpus.slice(0, cut));
    await writeFile(join(dir, 'b.txt'), corpus.slice(cut));
    const runs = [['a.txt', 'b.txt'], ['b.txt', 'a.txt'], ['a.txt', 'b.txt']];
    const outputs: string[] = [];
    for (const [i, files] of runs.entries()) {
      const out = join(dir, `out${i}`);
      const result = await trainTokenizer({ corpusFiles: files.map((f) => join(dir, f)), vocabSize: 320, outDir: out });
      expect(result.vocabSize).toBe(320);
      outputs.push((await readFile(join(out, 'tokenizer.json'), 'utf8')) + (await readFile(join(out, 'tokenizer_config.json'), 'utf8')));
    }
    expect(outputs[1]).toBe(outputs[0]);
    expect(outputs[2]).toBe(outputs[0]);
  });

  test('round trip through the loader, with <pad> distinct from </s>', async () => {
    const out = join(dir, 'rt');
    await writeFile(join(dir, 'rt.txt'), 'the cat sat on the mat. the dog sat on the log.\n'.repeat(20));
    await trainTokenizer({ corpusFiles: [join(dir, 'rt.txt')], vocabSize: 300, outDir: out });
    const tok = await loadTokenizer(out);
    const text = 'the cat — 猫 🐈\tsat\non the mat.';
    const ids = tok.encode(text);
    expect(ids[0]).toBe(tok.bosId);
    expect(tok.decode(ids.slice(1))).toBe(text);
    expect(tok.tokenToId('Ġthe')).toBeDefined();
    expect([tok.padId, tok.bosId, tok.eosId]).toEqual([0, 1, 2]);
  });

  test('bad arguments are UserErrors naming the problem', async () => {
    await expect(trainTokenizer({ corpusFiles: [join(dir, 'missing.txt')], vocabSize: 400, outDir: dir })).rejects.toThrow(
      /cannot read corpus file .*missing\.txt/,
    );
    await expect(trainTokenizer({ corpusFiles: [], vocabSize: 400, outDir: dir })).rejects.toThrow(UserError);
    await expect(trainTokenizer({ corpusFiles: [join(dir, 'a.txt')], vocabSize: MIN_VOCAB_SIZE - 1, outDir: dir })).rejects.toThrow(
      /--vocab-size must be an integer >= 261/,
    );
  });
});
