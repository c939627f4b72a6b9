import { collateDpo, splitImplicitPrompt, tokenizeDpoPairs } from '../../src/dpo/data.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';

test('implicit-prompt rows: the messages both sides share become the prompt (TRL extract_prompt)', () => {
  const user = { role: 'user' as const, content: 'Hi' };
  const split = splitImplicitPrompt([user, { role: 'assistant', content: 'Hello' }], [user, { role: 'assistant', content: 'Go away' }]);
  expect(split).toEqual({ prompt: [user], chosen: [{ role: 'assistant', content: 'Hello' }], rejected: [{ role: 'assistant', content: 'Go away' }] });
  // Identical sides keep their last message as the reply.
  expect(splitImplicitPrompt([user], [user]).chosen).toEqual([user]);
});

test('labels mark exactly the reply and its turn-end token; collated rows are chosen then rejected, labels shifted', async () => {
  const tokenizer = await loadTokenizer(TOKENIZER);
  const rows = [{
    row: 1,
    value: { prompt: [{ role: 'user' as const, content: 'What is 2 plus 2?' }], chosen: [{ role: 'assistant' as const, content: 'It is 4.' }], rejected: [{ role: 'assistant' as const, content: 'No.' }], strength: 'better' as const },
  }];
  const { pairs } = tokenizeDpoPairs(tokenizer, rows, { file: 'f', template: 'llama2', maxLength: 128, strengthWeights: { significantly_better: 1, better: 0.5, slightly_better: 0, negligibly_better: 0 } });
  const p = pairs[0]!;
  expect(p.weight).toBe(0.5);
  const reply = p.chosenIds.filter((_, i) => p.chosenLabels[i] !== -100);
  expect(tokenizer.decode(reply, { skipSpecialTokens: false })).toMatch(/^\s*It is 4\.\s*<\/s>$/);
  expect(p.chosenLabels.slice(0, p.chosenIds.length - reply.length).every((l) => l === -100)).toBe(true);

  const b = collateDpo([p], { padId: tokenizer.padId });
  expect(b.ids).toHaveLength(2);
  expect(b.ids[0]!.length % 8).toBe(0);
  expect(b.ids[0]!.slice(0, p.chosenIds.length)).toEqual(p.chosenIds);
  expect(b.ids[1]!.slice(0, p.rejectedIds.length)).toEqual(p.rejectedIds);
  expect(b.mask[1]!.reduce((s, m) => s + m, 0)).toBe(p.rejectedIds.length);
  expect(b.labels[0]!.slice(0, p.chosenIds.length - 1)).toEqual(p.chosenLabels.slice(1));
  expect(b.labels[0]!.slice(p.chosenIds.length - 1).every((l) => l === -100)).toBe(true);

  // Too long: dropped and counted.
  expect(tokenizeDpoPairs(tokenizer, rows, { file: 'f', template: 'llama2', maxLength: 8, strengthWeights: null }).dropped).toBe(1);
});
