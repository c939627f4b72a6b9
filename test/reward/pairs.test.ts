import { initEngine } from '../../src/engine/index.js';
import { lengthGroupedBatches, padSequences, pairLength, tokenizePairs, tokenizePreferenceSide, type TokenizedPair } from '../../src/reward/pairs.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';

let tokenizer: Tokenizer;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  tokenizer = await loadTokenizer('test/fixtures/tokenizers/byte-level-bpe');
});

test('padSequences pads left or right, mask 1 on tokens', () => {
  expect(padSequences([[5, 6, 7], [8]], { padId: 0, side: 'right' })).toEqual({ ids: [[5, 6, 7], [8, 0, 0]], mask: [[1, 1, 1], [1, 0, 0]] });
  expect(padSequences([[5, 6, 7], [8]], { padId: 0, side: 'left', padToMultipleOf: 4 })).toEqual({
    ids: [[0, 5, 6, 7], [0, 0, 0, 8]],
    mask: [[0, 1, 1, 1], [0, 0, 0, 1]],
  });
});

test('a side is the chat-templated prompt + answer, ending in EOS; text rows are BOS + prompt + answer + EOS', () => {
  const msgs = tokenizePreferenceSide(tokenizer, [{ role: 'user', content: 'Hi' }], [{ role: 'assistant', content: 'Hello there' }], 'llama2', 'turn_end');
  expect(tokenizer.decode(msgs)).toBe('<s>[INST] Hi [/INST] Hello there </s>');
  const text = tokenizePreferenceSide(tokenizer, 'Q: hi\nA:', ' hello', 'llama2', 'turn_end');
  expect(text[0]).toBe(tokenizer.bosId);
  expect(text[text.length - 1]).toBe(tokenizer.eosId);
  expect(tokenizer.decode(text)).toBe('<s>Q: hi\nA: hello</s>');
  // Implicit prompt (TRL): no prompt column, the answer holds the whole dialogue.
  const implicit = tokenizePreferenceSide(tokenizer, undefined, [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there' }], 'llama2', 'turn_end');
  expect(implicit).toEqual(msgs);
});

test('tokenizePairs: margins from Table 27, long pairs dropped', () => {
  const rows = [
    { row: 1, value: { prompt: 'a', chosen: ' b', rejected: ' c', strength: 'better' as const } },
    { row: 2, value: { prompt: 'a', chosen: ' b'.repeat(40), rejected: ' c', strength: 'significantly_better' as const } },
    { row: 3, value: { prompt: 'a', chosen: ' b', rejected: ' c', strength: 'slightly_better' as const, margin: 9 } },
  ];
  const { pairs, dropped } = tokenizePairs(tokenizer, rows, { file: 'f.jsonl', template: 'llama2', readAt: 'turn_end', marginKind: 'large', maxLength: 20 });
  expect(dropped).toBe(1);
  expect(pairs.map((p) => [p.row, p.margin, p.strength])).toEqual([
    [1, 2, 'better'],
    [3, 1, 'slightly_better'],
  ]);
  expect(() => tokenizePairs(tokenizer, rows, { file: 'f.jsonl', template: 'llama2', readAt: 'turn_end', marginKind: 'column', maxLength: 200 })).toThrow(
    'f.jsonl: reward.margin is "column", which needs a "margin" column; rows without one: 1, 2',
  );
});

test('lengthGroupedBatches: every pair once, batches of similar length, deterministic per seed', () => {
  const pairs: TokenizedPair[] = Array.from({ length: 100 }, (_, i) => ({
    chosen: new Array((i * 37) % 90 + 1).fill(5),
    rejected: [5],
    margin: 0,
    row: i + 1,
  }));
  const batches = lengthGroupedBatches(pairs, { batchSize: 8, seed: 1, megaBatches: 5 });
  expect(batches.flat().sort((a, b) => a - b)).toEqual(pairs.map((_, i) => i));
  expect(batches.map((b) => b.length)).toEqual([8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4]);
  // Within a mega-batch (5 batches) lengths descend, so a batch pads to about its own length.
  const lengths = batches.slice(0, 5).flat().map((i) => pairLength(pairs[i]!));
  expect(lengths).toEqual([...lengths].sort((a, b) => b - a));
  expect(lengthGroupedBatches(pairs, { batchSize: 8, seed: 1, megaBatches: 5 })).toEqual(batches);
  expect(lengthGroupedBatches(pairs, { batchSize: 8, seed: 2, megaBatches: 5 })).not.toEqual(batches);
});
