import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { loadInstructionSet, sampleInstruction, type InstructionSet } from '../../src/gatt/instructions.js';
import { modelReplySampler } from '../../src/gatt/sampler.js';
import { repairReply, synthesizeGatt, type ReplySampler, type SynthesisOptions } from '../../src/gatt/synthesize.js';
import { initLlama, llamaConfig } from '../../src/model/index.js';
import { packagePath } from '../../src/paths.js';
import { IGNORE_INDEX, loadTokenizer, MIN_VOCAB_SIZE, tokenizeDialogue, trainTokenizer, type ChatMessage, type Tokenizer } from '../../src/tokenizer/index.js';
import { worldCheckers } from '../../src/world/checkers.js';
import { applyInstructions } from '../../src/world/instructions.js';

// A byte-level tokenizer with no merges: special tokens 0..4, then byte b is token 5 + b, so the
// expected ids below are written by hand, without asking any tokenizer.
let charTok: Tokenizer;
let workDir: string;
const [BOS, EOS] = [1, 2];
const chars = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 5 + b);

const WORLD: InstructionSet = loadInstructionSet(packagePath('data', 'world', 'gatt_instructions.json'), worldCheckers);
/** Only the robot persona, always in its long form: the instruction drawn is known in advance. */
const ROBOT_ONLY: InstructionSet = { ...WORLD, families: ['persona'], instructions: WORLD.instructions.filter((i) => i.id === 'robot') };
const ROBOT_LONG = "Answer like a robot. Begin every answer with 'BEEP.'";

const baseOptions = (set: InstructionSet): SynthesisOptions => ({
  instructions: set,
  maxFamilies: 2,
  shortFormProb: 0.5,
  maxTurns: 20,
  rowsPerDialogue: 'last',
});

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  workDir = await mkdtemp(join(tmpdir(), 'rlhf-gatt-'));
  await writeFile(join(workDir, 'corpus.txt'), 'any text');
  await trainTokenizer({ corpusFiles: [join(workDir, 'corpus.txt')], vocabSize: MIN_VOCAB_SIZE, outDir: join(workDir, 'chars') });
  charTok = await loadTokenizer(join(workDir, 'chars'));
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

describe('a 3-turn synthesised sample', () => {
  const seeds = [{ userTurns: ['Hi', '2+2?', 'Bye'] }];
  const seen: ChatMessage[][] = [];
  // Answers "n" at turn n; follows the instruction by itself only at turn 2.
  const stub: ReplySampler = async (prompts) => {
    seen.push(...prompts);
    return prompts.map((p) => {
      const turn = p.filter((m) => m.role === 'user').length;
      return turn === 2 ? `BEEP. ${turn}` : `${turn}`;
    });
  };

  test('the model is sampled with the instruction before every user message, its own answers fed back', async () => {
    seen.length = 0;
    await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), shortFormProb: 0, repair: applyInstructions });
    expect(seen).toEqual([
      [{ role: 'user', content: `${ROBOT_LONG} Hi` }],
      [
        { role: 'user', content: `${ROBOT_LONG} Hi` },
        { role: 'assistant', content: 'BEEP. 1' },
        { role: 'user', content: `${ROBOT_LONG} 2+2?` },
      ],
      [
        { role: 'user', content: `${ROBOT_LONG} Hi` },
        { role: 'assistant', content: 'BEEP. 1' },
        { role: 'user', content: `${ROBOT_LONG} 2+2?` },
        { role: 'assistant', content: 'BEEP. 2' },
        { role: 'user', content: `${ROBOT_LONG} Bye` },
      ],
    ]);
  });

  test('the row keeps the instruction only as the first system message and trains only the last answer', async () => {
    const { rows, stats } = await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), shortFormProb: 0, repair: applyInstructions });
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toEqual({
      messages: [
        { role: 'system', content: ROBOT_LONG },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'BEEP. 1' },
        { role: 'user', content: '2+2?' },
        { role: 'assistant', content: 'BEEP. 2' },
        { role: 'user', content: 'Bye' },
        { role: 'assistant', content: 'BEEP. 3' },
      ],
      instruction_ids: ['robot'],
      instruction_form: 'long',
      train_on: 'last',
      trained_message: 6,
      followed: [false, true, false],
      repaired: [true, false, true],
      dropped_turns: 0,
      seed_index: 0,
    });
    expect(stats).toEqual({ dialogues: 1, rows: 1, answers: 3, followRate: 1 / 3, repairRate: 2 / 3, brokenRate: 0, emptyAnswers: 0, droppedRows: 0, tooLongRows: 0 });

    // Exact token masks (llama2 template): every token before the last answer has no loss,
    // the earlier assistant answers included; the last answer and its EOS are trained.
    const turn1 = `[INST] <<SYS>>\n${ROBOT_LONG}\n<</SYS>>\n\nHi [/INST]`;
    const pieces: [number[], boolean][] = [
      [[BOS, ...chars(turn1)], false],
      [[...chars(' BEEP. 1 '), EOS], false],
      [[BOS, ...chars('[INST] 2+2? [/INST]')], false],
      [[...chars(' BEEP. 2 '), EOS], false],
      [[BOS, ...chars('[INST] Bye [/INST]')], false],
      [[...chars(' BEEP. 3 '), EOS], true],
    ];
    const got = tokenizeDialogue(charTok, row.messages, { template: 'llama2', strategy: row.train_on === 'last' ? 'train_on_last' : 'train_on_assistant' });
    expect(got.inputIds).toEqual(pieces.flatMap(([ids]) => ids));
    expect(got.labels).toEqual(pieces.flatMap(([ids, trained]) => (trained ? ids : ids.map(() => IGNORE_INDEX))));
    expect(got.labels.filter((l) => l !== IGNORE_INDEX)).toEqual([...chars(' BEEP. 3 '), EOS]);
  });

  test("without repair the model's answers are kept as sampled; rows whose last answer breaks the instruction are dropped", async () => {
    const { rows, stats } = await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), shortFormProb: 0, rowsPerDialogue: 'all' });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.messages.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(['1', 'BEEP. 2']);
    expect(rows[0]!.repaired).toEqual([false, false]);
    expect(stats).toMatchObject({ answers: 3, rows: 1, droppedRows: 2, repairRate: 0 });
    expect(stats.brokenRate).toBeCloseTo(2 / 3, 12);
  });

  test("rows_per_dialogue 'all' gives one row per turn index, each trained on its own last turn", async () => {
    const { rows } = await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), rowsPerDialogue: 'all', repair: applyInstructions });
    expect(rows.map((r) => r.messages.length)).toEqual([3, 5, 7]);
    expect(rows.map((r) => r.trained_message)).toEqual([2, 4, 6]);
    expect(rows.map((r) => r.messages[r.messages.length - 1]!.content)).toEqual(['BEEP. 1', 'BEEP. 2', 'BEEP. 3']);
  });

  test('rows longer than maxTokens lose their oldest exchanges, never the system message or the last turn', async () => {
    const count = (m: readonly ChatMessage[]) => tokenizeDialogue(charTok, m, { template: 'llama2', strategy: 'train_on_last' }).inputIds.length;
    const full = await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), shortFormProb: 0, repair: applyInstructions });
    const limit = count(full.rows[0]!.messages) - 1;
    const { rows } = await synthesizeGatt(seeds, stub, new Rng(0), {
      ...baseOptions(ROBOT_ONLY),
      shortFormProb: 0,
      repair: applyInstructions,
      countTokens: count,
      maxTokens: limit,
    });
    expect(rows[0]!.dropped_turns).toBe(1);
    expect(rows[0]!.messages.map((m) => m.content)).toEqual([ROBOT_LONG, '2+2?', 'BEEP. 2', 'Bye', 'BEEP. 3']);
    expect(rows[0]!.followed).toEqual([true, false]);
  });

  test('a row whose instruction and trained turn alone exceed maxTokens is not written (never a row without its instruction)', async () => {
    const count = (m: readonly ChatMessage[]) => tokenizeDialogue(charTok, m, { template: 'llama2', strategy: 'train_on_last' }).inputIds.length;
    const full = await synthesizeGatt(seeds, stub, new Rng(0), { ...baseOptions(ROBOT_ONLY), shortFormProb: 0, repair: applyInstructions });
    const lastOnly = full.rows[0]!.messages.filter((_, i) => i === 0 || i >= full.rows[0]!.messages.length - 2); // system + last exchange
    const { rows, stats } = await synthesizeGatt(seeds, stub, new Rng(0), {
      ...baseOptions(ROBOT_ONLY),
      shortFormProb: 0,
      repair: applyInstructions,
      countTokens: count,
      maxTokens: count(lastOnly) - 1,
    });
    expect(rows).toHaveLength(0);
    expect(stats).toMatchObject({ rows: 0, tooLongRows: 1, droppedRows: 0 });
  });

  test('an empty answer ends its dialogue before that turn', async () => {
    const emptyAt2: ReplySampler = async (prompts) => prompts.map((p) => (p.filter((m) => m.role === 'user').length === 2 ? '' : 'BEEP. ok'));
    const { rows, stats } = await synthesizeGatt(seeds, emptyAt2, new Rng(0), baseOptions(ROBOT_ONLY));
    expect(rows[0]!.messages.map((m) => m.content)).toEqual([expect.any(String), 'Hi', 'BEEP. ok']);
    expect(stats.emptyAnswers).toBe(1);
  });
});

test('repair rewrites only for the instructions a reply breaks', () => {
  expect(repairReply(WORLD, ['robot', 'thanks'], 'BEEP. Four.', applyInstructions)).toBe('BEEP. Four. Thanks for asking.');
  expect(repairReply(WORLD, ['robot', 'thanks'], 'Four.', applyInstructions)).toBe('BEEP. Four. Thanks for asking.');
  expect(repairReply(WORLD, ['uppercase'], 'FOUR.', applyInstructions)).toBe('FOUR.');
  expect(repairReply(WORLD, ['zib', 'uppercase'], 'The sky is blue.', applyInstructions)).toBe('TA SKY ZO BAM.');
});

test('instructions are drawn as recorded for a seed: 1–2 families, one instruction each, long or short', () => {
  const rng = new Rng(7);
  const drawn = Array.from({ length: 6 }, () => sampleInstruction(rng, WORLD, { maxFamilies: 2, shortFormProb: 0.5 }));
  expect(drawn.map((d) => [d.ids.join('+'), d.form])).toEqual([
    ['cats', 'long'],
    ['uppercase', 'short'],
    ['thanks', 'short'],
    ['pirate+thanks', 'long'],
    ['uppercase', 'short'],
    ['music', 'short'],
  ]);
  expect(drawn[3]!.text).toBe("Answer like a pirate. Begin every answer with 'Arr.' End every answer with 'Thanks for asking.'");
  expect(drawn[1]!.text).toBe('Style: uppercase');
});

describe('synthesis from a model is deterministic under a seed', () => {
  const seeds = [{ userTurns: ['Hi', 'What is 2+2?'] }, { userTurns: ['Hello'] }, { userTurns: ['A', 'B', 'C'] }];

  async function synthOnce(seed: number) {
    const config = llamaConfig({
      vocab_size: charTok.vocabSize,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      max_position_embeddings: 512,
      bos_token_id: BOS,
      eos_token_id: EOS,
    });
    const model = initLlama(config, new Rng(123));
    try {
      const root = new Rng(seed);
      const sampler = modelReplySampler(model, charTok, { template: 'llama2', maxNewTokens: 6, temperature: 1, batchSize: 2, rng: root.fork() });
      // Short forms keep the byte-level prompts short (and the test fast).
      return await synthesizeGatt(seeds, sampler, root.fork(), { ...baseOptions(WORLD), shortFormProb: 1, repair: applyInstructions });
    } finally {
      model.dispose();
    }
  }

  test('same seed, same rows; another seed, other rows; no tensor leaked', async () => {
    const before = tf.memory().numTensors;
    const a = await synthOnce(1);
    const b = await synthOnce(1);
    const c = await synthOnce(2);
    expect(tf.memory().numTensors).toBe(before);
    expect(a).toEqual(b);
    expect(a.rows.map((r) => r.messages.length)).toEqual([5, 3]);
    expect(a.stats).toMatchObject({ answers: 6, droppedRows: 1 });
    expect(JSON.stringify(c.rows)).not.toEqual(JSON.stringify(a.rows));
  });
});

test('best-of-K keeps, for each prompt, the candidate the scorer ranks highest', async () => {
  const config = llamaConfig({
    vocab_size: charTok.vocabSize,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    bos_token_id: BOS,
    eos_token_id: EOS,
  });
  const model = initLlama(config, new Rng(9));
  try {
    const prompts: ChatMessage[][] = [[{ role: 'user', content: 'Hi' }], [{ role: 'user', content: 'Yo' }]];
    const opts = { template: 'llama2' as const, maxNewTokens: 5, temperature: 1, batchSize: 8 };
    // The same rng draws the same 3 × 2 candidates, laid out candidate-major.
    const candidates = await modelReplySampler(model, charTok, { ...opts, rng: new Rng(4) })([...prompts, ...prompts, ...prompts]);
    const scored: string[] = [];
    const byLength = async (_p: ChatMessage[][], replies: string[]) => {
      scored.push(...replies);
      return replies.map((r) => Buffer.byteLength(r));
    };
    const best = await modelReplySampler(model, charTok, { ...opts, rng: new Rng(4), bestOf: { k: 3, score: byLength } })(prompts);
    expect(scored).toEqual(candidates);
    const longest = (i: number) => [candidates[i]!, candidates[i + 2]!, candidates[i + 4]!].reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a));
    expect(best).toEqual([longest(0), longest(1)]);
  } finally {
    model.dispose();
  }
});
