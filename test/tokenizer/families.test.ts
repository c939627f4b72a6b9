/**
 * Tokenizers and chat templates of the model families, from small hand-made fixtures in each
 * family's exact tokenizer.json / tokenizer_config.json format (scripts/family_tokenizers.py, which
 * also computes the expected ids with an independent python `regex` + byte-level BPE encoder):
 * Llama 3 (Split regex with digit runs of 1–3, ignore_merges, <|begin_of_text|> from the
 * post-processor, <|eot_id|> turn end), Qwen2.5 (NFC, single digits, no BOS, ChatML with a default
 * system prompt, <|im_end|>), SmolLM2 (Digits + GPT-2 byte level, ChatML with SmolLM's system prompt).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HfTokenizer, loadTokenizer, renderChatText, tokenizeDialogue, turnEndIds, IGNORE_INDEX, type ChatMessage } from '../../src/tokenizer/index.js';

const DIR = join('test', 'fixtures', 'tokenizers-families');
const FAMILIES = ['llama3', 'qwen2', 'smollm2'] as const;
interface Expected {
  texts: string[];
  ids: number[][];
  ids_with_special_tokens: number[][];
}
const expectedOf = (f: string) => JSON.parse(readFileSync(join(DIR, f, 'expected.json'), 'utf8')) as Expected;

describe.each(FAMILIES)('%s tokenizer', (family) => {
  it('encodes as the independent reference (pre-tokenizer regex, normalizer, merges, added tokens) and decodes back', async () => {
    const tok = await loadTokenizer(join(DIR, family));
    const ex = expectedOf(family);
    ex.texts.forEach((text, i) => {
      expect(tok.encode(text, { addSpecialTokens: false })).toEqual(ex.ids[i]);
      expect(tok.encode(text)).toEqual(ex.ids_with_special_tokens[i]);
      // Qwen's NFC normalizer composes e + U+0301; decoding gives the composed text.
      expect(tok.decode(ex.ids[i]!)).toBe(family === 'qwen2' ? text.normalize('NFC') : text);
    });
  });
});

it('family-specific encoding rules show in the ids', async () => {
  const [llama3, qwen2, smollm2] = await Promise.all(FAMILIES.map((f) => loadTokenizer(join(DIR, f))));
  const pieces = (tok: HfTokenizer | undefined, text: string) => tok!.encode(text, { addSpecialTokens: false }).map((id) => tok!.idToToken(id));
  // Llama 3: digits in runs of up to three; Qwen2 and SmolLM2: one digit per token.
  expect(pieces(llama3!, '12345')).toEqual(['123', '4', '5']);
  expect(pieces(qwen2!, '12345')).toEqual(['1', '2', '3', '4', '5']);
  expect(pieces(smollm2!, '12345')).toEqual(['1', '2', '3', '4', '5']);
  // ignore_merges (Llama 3 only): a word in the vocabulary is one token even with no merge path to it.
  expect(pieces(llama3!, ' world')).toEqual(['Ġworld']);
  expect(pieces(qwen2!, ' world')).toEqual(['Ġwor', 'ld']);
  // Case-insensitive contractions in the Llama 3 / Qwen regex, not in GPT-2's (SmolLM2).
  expect(pieces(llama3!, "He'S")).toEqual(['He', "'S"]);
  expect(pieces(smollm2!, "He'S")).toEqual(['He', "'", 'S']);
  // BOS: Llama 3's post-processor adds <|begin_of_text|>; Qwen2 (bos_token null) and SmolLM2 add nothing.
  expect(llama3!.encode('Hello')[0]).toBe(llama3!.tokenToId('<|begin_of_text|>'));
  expect(qwen2!.encode('Hello')).toEqual(qwen2!.encode('Hello', { addSpecialTokens: false }));
  expect(smollm2!.encode('Hello')).toEqual(smollm2!.encode('Hello', { addSpecialTokens: false }));
});

it('special ids as each family declares them', async () => {
  const [llama3, qwen2, smollm2] = await Promise.all(FAMILIES.map((f) => loadTokenizer(join(DIR, f))));
  const id = (tok: HfTokenizer | undefined, t: string) => tok!.tokenToId(t);
  // Llama 3 Instruct: eos <|eot_id|>; no pad token, so pad falls back to eos.
  expect([llama3!.bosId, llama3!.eosId, llama3!.padId]).toEqual([id(llama3, '<|begin_of_text|>'), id(llama3, '<|eot_id|>'), id(llama3, '<|eot_id|>')]);
  // Qwen2.5: no BOS (bos_token null: eos stands in), eos <|im_end|>, pad <|endoftext|>.
  expect([qwen2!.eosId, qwen2!.padId]).toEqual([id(qwen2, '<|im_end|>'), id(qwen2, '<|endoftext|>')]);
  // SmolLM2: bos <|im_start|>, eos = pad = <|im_end|>.
  expect([smollm2!.bosId, smollm2!.eosId, smollm2!.padId]).toEqual([1, 2, 2]);
});

describe('chat templates of the families', () => {
  const user: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  const dialogue: ChatMessage[] = [
    { role: 'user', content: 'Hello' },
    { role: 'assistant', content: 'Hello world' },
    { role: 'user', content: 'the user' },
    { role: 'assistant', content: 'café' },
  ];

  it('render as the families document them, default system prompts included', async () => {
    const [llama3, qwen2, smollm2] = await Promise.all(FAMILIES.map((f) => loadTokenizer(join(DIR, f))));
    const gen = { addGenerationPrompt: true };
    expect(renderChatText(llama3!, user, 'tokenizer', gen)).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(renderChatText(qwen2!, user, 'tokenizer', gen)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(renderChatText(smollm2!, user, 'tokenizer', gen)).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    // A system message of the dialogue replaces the default one.
    const withSystem = [{ role: 'system', content: 'Be brief.' }, ...user];
    expect(renderChatText(qwen2!, withSystem, 'tokenizer', { addGenerationPrompt: false })).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
    expect(renderChatText(smollm2!, withSystem, 'tokenizer', { addGenerationPrompt: false })).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  });

  it.each(FAMILIES)('%s: the turn end is what generation stops on and what closes each trained answer', async (family) => {
    const tok = await loadTokenizer(join(DIR, family));
    const turnEnd = tok.tokenToId(family === 'llama3' ? '<|eot_id|>' : '<|im_end|>')!;
    expect(turnEndIds(tok, 'tokenizer')).toContain(turnEnd);
    const { inputIds, labels } = tokenizeDialogue(tok, dialogue, { template: 'tokenizer' });
    expect(inputIds).toEqual(tok.encode(renderChatText(tok, dialogue, 'tokenizer', { addGenerationPrompt: false }), { addSpecialTokens: false }));
    // Trained runs: exactly each answer's tokens followed by the turn end (not the newline after it).
    const runs: number[][] = [];
    labels.forEach((l, i) => {
      if (l === IGNORE_INDEX) return;
      if (i === 0 || labels[i - 1] === IGNORE_INDEX) runs.push([]);
      runs[runs.length - 1]!.push(l);
    });
    expect(runs).toEqual(['Hello world', 'café'].map((a) => [...tok.encode(a, { addSpecialTokens: false }), turnEnd]));
  });
});
