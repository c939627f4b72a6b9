import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HfTokenizer,
  IGNORE_INDEX,
  loadTokenizer,
  MIN_VOCAB_SIZE,
  renderChatPrompt,
  renderChatText,
  tokenizeDialogue,
  tokenizePromptCompletion,
  trainTokenizer,
  turnEndIds,
  type ChatMessage,
  type LabelStrategy,
  type Tokenizer,
} from '../../src/tokenizer/index.js';
import { UserError } from '../../src/errors.js';
import { FIXTURES_DIR } from '../fixtures/tokenizers/build.js';

const DIALOGUE: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: '2+2?' },
  { role: 'assistant', content: '4' },
  { role: 'user', content: 'Thanks' },
  { role: 'assistant', content: 'Bye' },
];

// A byte-level tokenizer with no merges: special tokens 0..4, then byte b is token 5 + b. So the
// expected ids below are written by hand, without asking any tokenizer.
let charTok: Tokenizer;
let workDir: string;
const [PAD, BOS, EOS, IM_START, IM_END] = [0, 1, 2, 3, 4];
const chars = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 5 + b);

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'rlhf-dialogue-'));
  await writeFile(join(workDir, 'corpus.txt'), 'any text');
  await trainTokenizer({ corpusFiles: [join(workDir, 'corpus.txt')], vocabSize: MIN_VOCAB_SIZE, outDir: join(workDir, 'chars') });
  charTok = await loadTokenizer(join(workDir, 'chars'));
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Pieces of a hand-written example: ids and whether they are trained. */
type Piece = [ids: number[], trained: boolean];
const expectExample = (pieces: Piece[]) => ({
  inputIds: pieces.flatMap(([ids]) => ids),
  labels: pieces.flatMap(([ids, trained]) => (trained ? ids : ids.map(() => IGNORE_INDEX))),
});

describe('llama2 template, 3-turn dialogue', () => {
  const turn1 = '[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]';
  const pieces = (trained: [boolean, boolean, boolean]): Piece[] => [
    [[BOS, ...chars(turn1)], false],
    [[...chars(' Hello! '), EOS], trained[0]],
    [[BOS, ...chars('[INST] 2+2? [/INST]')], false],
    [[...chars(' 4 '), EOS], trained[1]],
    [[BOS, ...chars('[INST] Thanks [/INST]')], false],
    [[...chars(' Bye '), EOS], trained[2]],
  ];

  test('renders as Meta does', () => {
    expect(renderChatText(charTok, DIALOGUE, 'llama2', { addGenerationPrompt: false })).toBe(
      `<s>${turn1} Hello! </s><s>[INST] 2+2? [/INST] 4 </s><s>[INST] Thanks [/INST] Bye </s>`,
    );
  });

  test.each<[LabelStrategy, [boolean, boolean, boolean] | 'all']>([
    ['train_on_assistant', [true, true, true]],
    ['train_on_last', [false, false, true]],
    ['train_on_all', 'all'],
  ])('%s', (strategy, trained) => {
    const got = tokenizeDialogue(charTok, DIALOGUE, { template: 'llama2', strategy });
    const all = pieces([true, true, true]);
    expect(got).toEqual(trained === 'all' ? expectExample(all.map(([ids]) => [ids, true])) : expectExample(pieces(trained)));
  });
});

describe('chatml template, 3-turn dialogue', () => {
  const block = (role: string) => [IM_START, ...chars(`${role}\n`)];
  const pieces = (trained: [boolean, boolean, boolean]): Piece[] => [
    [[...block('system'), ...chars('Be brief.'), IM_END, ...chars('\n')], false],
    [[...block('user'), ...chars('Hi'), IM_END, ...chars('\n'), ...block('assistant')], false],
    [[...chars('Hello!'), IM_END], trained[0]],
    [[...chars('\n'), ...block('user'), ...chars('2+2?'), IM_END, ...chars('\n'), ...block('assistant')], false],
    [[...chars('4'), IM_END], trained[1]],
    [[...chars('\n'), ...block('user'), ...chars('Thanks'), IM_END, ...chars('\n'), ...block('assistant')], false],
    [[...chars('Bye'), IM_END], trained[2]],
    [chars('\n'), false], // after the turn's closing token: not trained
  ];

  test('renders ChatML', () => {
    expect(renderChatText(charTok, DIALOGUE.slice(0, 2), 'chatml', { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  test.each<[LabelStrategy, [boolean, boolean, boolean] | 'all']>([
    ['train_on_assistant', [true, true, true]],
    ['train_on_last', [false, false, true]],
    ['train_on_all', 'all'],
  ])('%s', (strategy, trained) => {
    const got = tokenizeDialogue(charTok, DIALOGUE, { template: 'chatml', strategy });
    const all = pieces([true, true, true]);
    expect(got).toEqual(trained === 'all' ? expectExample(all.map(([ids]) => [ids, true])) : expectExample(pieces(trained)));
  });
});

test('generation prompts end where the answer begins', () => {
  const prompt = DIALOGUE.slice(0, 4);
  expect(renderChatPrompt(charTok, prompt, 'chatml').slice(-11)).toEqual([IM_START, ...chars('assistant\n')]);
  const llama = renderChatPrompt(charTok, prompt, 'llama2');
  expect(llama.slice(-20)).toEqual([BOS, ...chars('[INST] 2+2? [/INST]')]);
  // The prompt is a prefix of the full training example.
  const full = tokenizeDialogue(charTok, DIALOGUE, { template: 'llama2' }).inputIds;
  expect(full.slice(0, llama.length)).toEqual(llama);
  expect(turnEndIds(charTok, 'chatml').sort()).toEqual([EOS, IM_END]);
  expect(turnEndIds(charTok, 'llama2')).toEqual([EOS]);
});

test('plain prompt/completion: BOS + prompt (no loss) + completion + EOS (trained)', () => {
  const got = tokenizePromptCompletion(charTok, 'Q: 2+2?', ' A: 4');
  expect(got).toEqual(expectExample([[[BOS, ...chars('Q: 2+2?')], false], [[...chars(' A: 4'), EOS], true]]));
  expect(got.labels.filter((l) => l === PAD)).toHaveLength(0);
});

test('conversational prompt/completion trains only the completion turns', () => {
  const got = tokenizePromptCompletion(charTok, DIALOGUE.slice(0, 4), DIALOGUE.slice(4, 5), { template: 'llama2' });
  expect(got).toEqual(expectExample([
    [[BOS, ...chars('[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]'), ...chars(' Hello! '), EOS], false],
    [[BOS, ...chars('[INST] 2+2? [/INST]')], false],
    [[...chars(' 4 '), EOS], true],
  ]));
});

describe('with real merges', () => {
  test('labelled tokens are exactly the answers and their EOS (byte-level BPE)', async () => {
    const tok = await loadTokenizer(join(FIXTURES_DIR, 'byte-level-bpe'));
    const warnings: string[] = [];
    const { inputIds, labels } = tokenizeDialogue(tok, DIALOGUE, { template: 'llama2', onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([]); // this tokenizer is prefix-stable under llama2
    const text = renderChatText(tok, DIALOGUE, 'llama2', { addGenerationPrompt: false });
    expect(inputIds).toEqual(tok.encode(text, { addSpecialTokens: false }));
    const trained = labels.map((l, i) => (l === IGNORE_INDEX ? '|' : tok.decode([inputIds[i]!]))).join('');
    expect(trained.split('|').filter(Boolean)).toEqual([' Hello! </s>', ' 4 </s>', ' Bye </s>']);
  });

  test("the tokenizer's own chat_template (Meta's, in the Llama fixture) equals the llama2 built-in", async () => {
    const tok = await loadTokenizer(join(FIXTURES_DIR, 'llama-byte-fallback'));
    for (const strategy of ['train_on_assistant', 'train_on_last', 'train_on_all'] as const) {
      expect(tokenizeDialogue(tok, DIALOGUE, { template: 'tokenizer', strategy })).toEqual(
        tokenizeDialogue(tok, DIALOGUE, { template: 'llama2', strategy }),
      );
    }
  });

  test('a ChatML chat_template from tokenizer_config trains through <|im_end|> (Unigram)', async () => {
    const tok = await loadTokenizer(join(FIXTURES_DIR, 'unigram'));
    const { inputIds, labels } = tokenizeDialogue(tok, DIALOGUE, { template: 'tokenizer', strategy: 'train_on_last' });
    const imEnd = tok.tokenToId('<|im_end|>')!;
    const trained = inputIds.filter((_, i) => labels[i] !== IGNORE_INDEX);
    expect(trained[trained.length - 1]).toBe(imEnd);
    expect(tok.decode(trained)).toBe('Bye<|im_end|>');
  });

  test('a template whose turns merge across a boundary falls back to per-turn tokenization, warning once', async () => {
    const base = await loadTokenizer(join(FIXTURES_DIR, 'byte-level-bpe'));
    const json = JSON.parse(await readFile(join(FIXTURES_DIR, 'byte-level-bpe', 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(await readFile(join(FIXTURES_DIR, 'byte-level-bpe', 'tokenizer_config.json'), 'utf8'));
    // Contents glued together: "Th" + "e end" renders "The end", where "The" is one token.
    config.chat_template = "{% for m in messages %}{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}";
    const tok = new HfTokenizer(json, config, 'test');
    const messages = [{ role: 'user', content: 'Th' }, { role: 'assistant', content: 'e end' }];
    const warnings: string[] = [];
    const onWarning = (m: string) => warnings.push(m);
    const got = tokenizeDialogue(tok, messages, { template: 'tokenizer', onWarning });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not tokenize prefix-stably/);
    const promptIds = base.encode('Th', { addSpecialTokens: false });
    const answerIds = [...base.encode('e end', { addSpecialTokens: false }), base.eosId];
    expect(got).toEqual(expectExample([[promptIds, false], [answerIds, true]]));
    expect(got.inputIds).not.toEqual(tok.encode('The end</s>', { addSpecialTokens: false }));
    tokenizeDialogue(tok, messages, { template: 'tokenizer', onWarning });
    expect(warnings).toHaveLength(1); // once
  });
});

describe('user errors', () => {
  test('chatml on a tokenizer without <|im_start|>/<|im_end|>', async () => {
    const tok = await loadTokenizer(join(FIXTURES_DIR, 'llama-byte-fallback'));
    expect(() => tokenizeDialogue(tok, DIALOGUE, { template: 'chatml' })).toThrow(/writes '<\|im_start\|>'/);
  });

  test('roles that do not alternate (raised by the template)', () => {
    const bad = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
    expect(() => tokenizeDialogue(charTok, bad, { template: 'llama2' })).toThrow(UserError);
    expect(() => tokenizeDialogue(charTok, bad, { template: 'llama2' })).toThrow(/roles must alternate/);
  });

  test("template 'tokenizer' without a chat_template", async () => {
    const tok = await loadTokenizer(join(FIXTURES_DIR, 'byte-level-bpe'));
    const noTemplate = Object.assign(Object.create(tok) as Tokenizer, { chatTemplate: undefined });
    expect(() => tokenizeDialogue(noTemplate, DIALOGUE, { template: 'tokenizer' })).toThrow(/no chat_template/);
  });
});
