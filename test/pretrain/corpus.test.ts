import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { documentRows, lmBatch, packedRows, readDocuments, splitDocuments, tokenizeDocuments } from '../../src/pretrain/corpus.js';
import { pretrainConfigSchema } from '../../src/pretrain/config.js';
import { plannedSteps } from '../../src/pretrain/recipe.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { UserError } from '../../src/errors.js';

const ids = (...xs: number[]) => Int32Array.from(xs);

describe('splitDocuments', () => {
  test('blank lines (with stray spaces and CRLF) separate documents; line and file modes', () => {
    const text = 'a b\nc\r\n\r\nd\n  \n\n\ne\n';
    expect(splitDocuments(text, 'blank_line')).toEqual(['a b\nc', 'd', 'e']);
    expect(splitDocuments(text, 'line')).toEqual(['a b', 'c', 'd', 'e']);
    expect(splitDocuments(text, 'file')).toEqual(['a b\nc\n\nd\n  \n\n\ne']);
  });
});

describe('rows', () => {
  test('packed rows overlap by one token, so every token after the first is a target exactly once', () => {
    const rows = packedRows([ids(1, 10, 11, 2), ids(1, 12, 2), ids(1, 13, 14, 15, 2)], 3);
    // stream: 1 10 11 2 1 12 2 1 13 14 15 2  (12 tokens) → rows start at 0, 3, 6; the 4th would need 13
    expect(rows.map((r) => [...r])).toEqual([
      [1, 10, 11, 2],
      [2, 1, 12, 2],
      [2, 1, 13, 14],
    ]);
  });

  test('document rows are cut at seqLen + 1 and one-token documents dropped', () => {
    const rows = documentRows([ids(1, 10, 11, 12, 13, 2), ids(1), ids(1, 2)], 3);
    expect(rows.map((r) => [...r])).toEqual([[1, 10, 11, 12], [1, 2]]);
  });

  test('lmBatch shifts targets and pads with padId / -100', () => {
    const b = lmBatch([ids(1, 10, 11, 2), ids(1, 2)], 3, 0);
    expect([...b.inputIds]).toEqual([1, 10, 11, 1, 0, 0]);
    expect([...b.labels]).toEqual([10, 11, 2, 2, -100, -100]);
    expect(b.targets).toBe(4);
    expect([b.batchSize, b.seqLen]).toEqual([2, 3]);
  });

  test('tokenizeDocuments wraps each document in BOS … EOS without the tokenizer adding its own', () => {
    const calls: Array<{ text: string; add: boolean | undefined }> = [];
    const tok = {
      bosId: 1,
      eosId: 2,
      padId: 0,
      vocabSize: 300,
      encode: (text: string, o?: { addSpecialTokens?: boolean }) => {
        calls.push({ text, add: o?.addSpecialTokens });
        return [...text].map((c) => c.charCodeAt(0));
      },
      decode: () => '',
      tokenToId: () => undefined,
    } satisfies Tokenizer;
    expect(tokenizeDocuments(['ab'], tok).map((r) => [...r])).toEqual([[1, 97, 98, 2]]);
    expect(calls).toEqual([{ text: 'ab', add: false }]);
  });
});

describe('readDocuments', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'pretrain-corpus-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads .txt and the text column of .jsonl, in file order', async () => {
    writeFileSync(join(dir, 'a.txt'), 'one\n\ntwo\n');
    writeFileSync(join(dir, 'b.jsonl'), '{"text":"three"}\n{"text":"four","id":1}\n');
    const docs = await readDocuments([join(dir, 'a.txt'), join(dir, 'b.jsonl')], { separator: 'blank_line', textColumn: 'text' });
    expect(docs).toEqual(['one', 'two', 'three', 'four']);
  });

  test('a missing file or column is a user error naming the file and row', async () => {
    await expect(readDocuments([join(dir, 'nope.txt')], { separator: 'blank_line', textColumn: 'text' })).rejects.toThrow(
      /data\.corpus: .*nope\.txt: file not found/,
    );
    writeFileSync(join(dir, 'c.jsonl'), '{"text":"ok"}\n{"body":"x"}\n');
    const bad = readDocuments([join(dir, 'c.jsonl')], { separator: 'blank_line', textColumn: 'text' });
    await expect(bad).rejects.toThrow(UserError);
    await expect(readDocuments([join(dir, 'c.jsonl')], { separator: 'blank_line', textColumn: 'text' })).rejects.toThrow(
      /c\.jsonl row 2: column 'text' is missing/,
    );
  });
});

describe('plannedSteps', () => {
  const cfg = (over: Record<string, unknown>) => pretrainConfigSchema.parse(over);

  test('token budget, then epochs, then train.steps', () => {
    // 16 rows × 128 tokens × accum 2 = 4096 tokens a step: 10_000 tokens → 3 steps
    expect(plannedSteps(cfg({ data: { token_budget: 10_000 }, optim: { grad_accum: 2 } }), 99)).toBe(3);
    // 1.5 epochs of 7 batches with accum 2 → ceil(10.5 / 2) = 6
    expect(plannedSteps(cfg({ train: { epochs: 1.5 }, optim: { grad_accum: 2 } }), 7)).toBe(6);
    expect(plannedSteps(cfg({ train: { steps: 42 } }), 7)).toBe(42);
  });
});
