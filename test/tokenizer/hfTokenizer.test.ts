import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HfTokenizer, loadTokenizer, type TokenizerConfigJson } from '../../src/tokenizer/index.js';
import { GPT2_SPLIT_PATTERN, toByteChars } from '../../src/tokenizer/byteLevel.js';
import { UserError } from '../../src/errors.js';
import { FIXTURES_DIR, FIXTURE_NAMES } from '../fixtures/tokenizers/build.js';

const fixture = (name: string) => join(FIXTURES_DIR, name);
const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

// Unicode (accents, CJK, a skin-tone emoji sequence), tabs, newlines, repeated and leading spaces.
const TRICKY = 'Héllo wörld! 👋🏽 naïve façade\tTab\t\tTabs\nNew line — 日本語 ✓\n\n  two spaces  The end 🚀';

describe.each(FIXTURE_NAMES)('%s fixture', (name) => {
  test('encode/decode round trip of Unicode, emoji, tabs and newlines', async () => {
    const tok = await loadTokenizer(fixture(name));
    const ids = tok.encode(TRICKY, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(10);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
    expect(tok.decode(ids)).toBe(TRICKY);
    // With special tokens added, skipping them on decode gives the text back too.
    expect(tok.decode(tok.encode(TRICKY), { skipSpecialTokens: true })).toBe(TRICKY);
    expect(tok.decode([])).toBe('');
  });

  test('BOS/EOS strings in text become their single ids', async () => {
    const tok = await loadTokenizer(fixture(name));
    const bos = tok.decode([tok.bosId]);
    const eos = tok.decode([tok.eosId]);
    const ids = tok.encode(`${bos}Hello${eos}`, { addSpecialTokens: false });
    expect(ids[0]).toBe(tok.bosId);
    expect(ids[ids.length - 1]).toBe(tok.eosId);
    expect(ids.slice(1, -1)).toEqual(tok.encode('Hello', { addSpecialTokens: false }));
  });
});

test('special ids, vocabulary sizes and chat templates of the fixtures', async () => {
  const [byteLevel, llama, unigram] = await Promise.all(FIXTURE_NAMES.map((n) => loadTokenizer(fixture(n))));
  // byte-level: <pad> <s> </s> <|im_start|> <|im_end|>, 256 bytes, 76 merges.
  expect([byteLevel!.vocabSize, byteLevel!.padId, byteLevel!.bosId, byteLevel!.eosId]).toEqual([337, 0, 1, 2]);
  // Llama: <unk> <s> </s>, 256 <0xNN>, '▁', 78 characters, 23 merges; no pad token → <unk>.
  expect([llama!.vocabSize, llama!.padId, llama!.bosId, llama!.eosId]).toEqual([3 + 256 + 1 + 78 + 23, 0, 1, 2]);
  // T5-like Unigram: 5 special, '▁', 12 words, 94 characters; no BOS (falls back to EOS).
  expect([unigram!.vocabSize, unigram!.padId, unigram!.bosId, unigram!.eosId]).toEqual([112, 0, 1, 1]);
  expect(byteLevel!.padId).not.toBe(byteLevel!.eosId);

  expect(byteLevel!.encode('hi')[0]).toBe(1); // add_bos_token
  expect(byteLevel!.encode('hi', { addSpecialTokens: false })[0]).not.toBe(1);
  const u = unigram!.encode('hi');
  expect(u[u.length - 1]).toBe(1); // T5 appends </s>

  expect(llama!.chatTemplate).toContain('[INST]');
  expect(unigram!.chatTemplate).toContain('<|im_start|>');
});

test('Llama-style BPE applies merges by rank and falls back to bytes (hand-computed)', async () => {
  const tok = await loadTokenizer(fixture('llama-byte-fallback'));
  // "The hello é" → normalizer "▁The▁hello▁é"; merges: ▁T+he after h+e and ▁+T; "hello" → he, ll, o;
  // "é" is not in the vocabulary → its UTF-8 bytes C3 A9.
  const expected = ['<s>', '▁The', '▁', 'he', 'll', 'o', '▁', '<0xC3>', '<0xA9>'].map((t) => tok.tokenToId(t));
  expect(expected.every((id) => id !== undefined)).toBe(true);
  expect(tok.encode('The hello é')).toEqual(expected);
});

/** Reference byte-level BPE encoder: apply the file's merges in rank order to each GPT-2 pre-token. */
function referenceEncode(text: string, vocab: Record<string, number>, merges: string[]): number[] {
  const rank = new Map(merges.map((m, i) => [m, i]));
  const ids: number[] = [];
  for (const match of text.matchAll(GPT2_SPLIT_PATTERN)) {
    let symbols = [...toByteChars(match[0])];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = rank.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      symbols = [...symbols.slice(0, best), symbols[best]! + symbols[best + 1]!, ...symbols.slice(best + 2)];
    }
    ids.push(...symbols.map((s) => vocab[s]!));
  }
  return ids;
}

test('the trained byte-level tokenizer encodes as a reference BPE over its own merges', async () => {
  const tok = await loadTokenizer(fixture('byte-level-bpe'));
  const json = await readJson(join(fixture('byte-level-bpe'), 'tokenizer.json'));
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const corpus = await readFile(join(FIXTURES_DIR, 'corpus.txt'), 'utf8');
  const ids = tok.encode(corpus, { addSpecialTokens: false });
  expect(ids).toEqual(referenceEncode(corpus, model.vocab, model.merges));
  // The merges compress the text they were trained on.
  expect(ids.length).toBeLessThan(0.6 * Buffer.byteLength(corpus));
  expect(tok.decode(ids)).toBe(corpus);
});

describe('tokenizer_config.json handling', () => {
  const llamaJson = () => readJson(join(fixture('llama-byte-fallback'), 'tokenizer.json'));

  test('add_bos_token / add_eos_token decide the special tokens over the post-processor', async () => {
    const json = await llamaJson();
    const plain = new HfTokenizer(json, { add_bos_token: false }, 'test').encode('The');
    expect(plain).toEqual([new HfTokenizer(json, {}, 'test').tokenToId('▁The')]);
    const both = new HfTokenizer(json, { add_bos_token: true, add_eos_token: true }, 'test').encode('The');
    expect(both).toEqual([1, plain[0], 2]);
  });

  test('a special token missing from the vocabulary is a UserError naming the key', async () => {
    const json = await llamaJson();
    const config: TokenizerConfigJson = { pad_token: '<nope>' };
    expect(() => new HfTokenizer(json, config, 'my/dir')).toThrow(UserError);
    expect(() => new HfTokenizer(json, config, 'my/dir')).toThrow(/my\/dir\/tokenizer_config.json: pad_token '<nope>'/);
  });

  test('a list of named chat templates picks "default"', async () => {
    const json = await llamaJson();
    const tok = new HfTokenizer(json, { chat_template: [{ name: 'tool_use', template: 'A' }, { name: 'default', template: 'B' }] }, 't');
    expect(tok.chatTemplate).toBe('B');
  });

  test('a missing folder is a UserError naming tokenizer.json', async () => {
    await expect(loadTokenizer('/nonexistent/tok')).rejects.toThrow(/cannot read \/nonexistent\/tok\/tokenizer.json/);
  });
});
