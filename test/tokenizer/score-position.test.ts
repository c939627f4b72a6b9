/**
 * One scoring rule: a reply is scored at the template's turn-end token of the last assistant turn.
 * With chatml (which writes `\n` after `<|im_end|>`), reward training, `rlhf reward score`, PPO's
 * rollout/eval scoring, rejection sampling and GAtt's best-of-K read the same token, so they give
 * the same reward; a reward model folder without reward_read.json (trained elsewhere on the full
 * rendering) is read at its last token by all of them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { rewardModelScorer as gattScorer } from '../../src/gatt/reward-scorer.js';
import { REWARD_READ_FILE, readRewardReadAt } from '../../src/model/io/reward-read.js';
import { attachScoreHead, initLlama, llamaConfig, loadHfModel, type LlamaModel } from '../../src/model/index.js';
import { sequenceRewards } from '../../src/model/score.js';
import { rewardInputs, sequenceScores } from '../../src/ppo/rollout.js';
import { saveRewardModel } from '../../src/reward/model.js';
import { tokenizePairs } from '../../src/reward/pairs.js';
import { scoreFile } from '../../src/reward/score.js';
import { rewardModelScorer as rsScorer } from '../../src/rs/score.js';
import type { Message } from '../../src/data/index.js';
import {
  loadTokenizer, renderChatPrompt, scoredIds, tokenizePreferenceExample, turnEndIds, turnEndSuffix, type Tokenizer,
} from '../../src/tokenizer/index.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';
let dir: string;
let tokenizer: Tokenizer;
let IM_END: number;
let NEWLINE: number[];

const PROMPTS: Message[][] = [
  [{ role: 'user', content: 'Add 2 and 3.' }],
  [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a colour.' }],
];
const REPLIES = ['It is 5.', 'Blue.'];

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  dir = mkdtempSync(join(tmpdir(), 'read-at-'));
  tokenizer = await loadTokenizer(TOKENIZER);
  IM_END = tokenizer.tokenToId('<|im_end|>')!;
  NEWLINE = tokenizer.encode('\n', { addSpecialTokens: false });
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
    pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, initializer_range: 0.5,
  });
  const rm = initLlama(cfg, new Rng(1));
  attachScoreHead(rm, new Rng(2), { dropLmHead: true });
  // The same weights twice: as the reward stage writes it (read_at recorded) and as a folder from elsewhere (no record).
  saveRewardModel(rm, join(dir, 'rm'), { stats: { mean: 0, std: 1 }, tokenizerDir: TOKENIZER, padId: tokenizer.padId, readAt: 'turn_end' });
  saveRewardModel(rm, join(dir, 'hf'), { stats: { mean: 0, std: 1 }, tokenizerDir: TOKENIZER, padId: tokenizer.padId });
  rm.dispose();
  const rows = PROMPTS.map((p, i) => ({ prompt: p, chosen: [{ role: 'assistant', content: REPLIES[i] }], rejected: [{ role: 'assistant', content: 'No.' }] }));
  writeFileSync(join(dir, 'prefs.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(join(dir, 'dialogues.jsonl'), rows.map((r) => JSON.stringify({ messages: [...r.prompt, ...r.chosen] })).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rewards of id sequences, right-padded, read at the last real token (what every stage's scorer does). */
function rewardsOf(model: LlamaModel, seqs: number[][]): number[] {
  const width = Math.max(...seqs.map((s) => s.length));
  const ids = tf.tensor2d(seqs.map((s) => [...s, ...new Array<number>(width - s.length).fill(tokenizer.padId)]), undefined, 'int32');
  const mask = tf.tensor2d(seqs.map((s) => s.map(() => 1).concat(new Array<number>(width - s.length).fill(0))), undefined, 'int32');
  const r = sequenceRewards(model, ids, mask);
  const out = Array.from(r.dataSync());
  tf.dispose([ids, mask, r]);
  return out;
}

/** PPO's layout: [left-padded prompt | response (ending at <|im_end|>) | right pad], scored as rollout/answerAndScore do. */
function ppoScores(model: LlamaModel, suffix: number[]): { scores: number[]; lastRead: number[] } {
  const prompts = PROMPTS.map((p) => renderChatPrompt(tokenizer, p, 'chatml'));
  const responses = PROMPTS.map((p, i) => {
    // the reply tokens as the reward side has them after its prompt, then the stop token
    const side = tokenizePreferenceExample(tokenizer, p, [{ role: 'assistant', content: REPLIES[i]! }], 'chatml').inputIds;
    expect(side.slice(0, prompts[i]!.length)).toEqual(prompts[i]);
    const reply = side.slice(prompts[i]!.length);
    return reply.slice(0, reply.indexOf(IM_END) + 1);
  });
  const P = Math.max(...prompts.map((p) => p.length));
  const N = Math.max(...responses.map((r) => r.length)) + 2;
  const padLeft = (p: number[]) => new Array<number>(P - p.length).fill(tokenizer.padId);
  const ids = prompts.map((p, i) => [...padLeft(p), ...p, ...responses[i]!, ...new Array<number>(N - responses[i]!.length).fill(tokenizer.padId)]);
  const mask = prompts.map((p, i) => [...padLeft(p).map(() => 0), ...p.map(() => 1), ...responses[i]!.map(() => 1), ...new Array<number>(N - responses[i]!.length).fill(0)]);
  const read = rewardInputs(ids, mask, [true, true], suffix, tokenizer.padId);
  const lastRead = read.ids.map((row, r) => row[read.mask[r]!.lastIndexOf(1)]!);
  const idsT = tf.tensor2d(read.ids, undefined, 'int32');
  const maskT = tf.tensor2d(read.mask, undefined, 'int32');
  const scores = Array.from(sequenceScores(model, idsT, maskT));
  tf.dispose([idsT, maskT]);
  return { scores, lastRead };
}

const close = (a: number[], b: number[]) => a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThan(1e-5));

test('chatml: the full rendering ends with a newline after <|im_end|>; turn_end reads <|im_end|>, last_token the newline', () => {
  expect(turnEndIds(tokenizer, 'chatml')).toContain(IM_END);
  expect(turnEndSuffix(tokenizer, 'chatml')).toEqual(NEWLINE);
  expect(turnEndSuffix(tokenizer, 'llama2')).toEqual([]);
  const ex = tokenizePreferenceExample(tokenizer, PROMPTS[0], [{ role: 'assistant', content: REPLIES[0]! }], 'chatml');
  expect(ex.inputIds.slice(-1 - NEWLINE.length)).toEqual([IM_END, ...NEWLINE]);
  expect(scoredIds(ex, 'turn_end')).toEqual(ex.inputIds.slice(0, -NEWLINE.length));
  expect(scoredIds(ex, 'last_token')).toEqual(ex.inputIds);
  expect(readRewardReadAt(join(dir, 'rm'))).toBe('turn_end');
  expect(readRewardReadAt(join(dir, 'hf'))).toBe('last_token');
  expect(JSON.parse(readFileSync(join(dir, 'rm', REWARD_READ_FILE), 'utf8'))).toEqual({ read_at: 'turn_end' });
});

test('read_at turn_end: reward training, rlhf reward score, PPO, rs and GAtt all read <|im_end|> and agree', async () => {
  const model = loadHfModel(join(dir, 'rm'));
  const rows = PROMPTS.map((p, i) => ({ row: i + 1, value: { prompt: p, chosen: [{ role: 'assistant' as const, content: REPLIES[i]! }], rejected: [{ role: 'assistant' as const, content: 'No.' }] } }));
  const { pairs } = tokenizePairs(tokenizer, rows, { file: 'prefs', template: 'chatml', readAt: 'turn_end', marginKind: 'none', maxLength: 512 });
  // the token the reward model is trained at: the reply's <|im_end|>, not the newline after it
  pairs.forEach((p) => expect(p.chosen[p.chosen.length - 1]).toBe(IM_END));
  const trained = rewardsOf(model, pairs.map((p) => p.chosen));

  // PPO (rollout and eval score the same way): the response stops at <|im_end|>, nothing appended
  const ppo = ppoScores(model, []);
  expect(ppo.lastRead).toEqual([IM_END, IM_END]);
  close(ppo.scores, trained);

  // rlhf reward score: preference rows and messages rows
  await scoreFile(join(dir, 'rm'), join(dir, 'prefs.jsonl'), join(dir, 'scored.jsonl'), { template: 'chatml' });
  const scored = readFileSync(join(dir, 'scored.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  close(scored.map((r) => r.reward_chosen), trained);
  await scoreFile(join(dir, 'rm'), join(dir, 'dialogues.jsonl'), join(dir, 'scored-d.jsonl'), { template: 'chatml' });
  close(readFileSync(join(dir, 'scored-d.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).reward), trained);

  // rejection sampling and GAtt's best-of-K scorers
  const rs = await rsScorer(join(dir, 'rm'), { template: 'chatml', batchSize: 4 });
  close(await rs.score(PROMPTS, REPLIES), trained);
  rs.dispose();
  const gatt = await gattScorer(join(dir, 'rm'), { template: 'chatml', batchSize: 4 });
  close(await gatt.score(PROMPTS, REPLIES), trained);
  gatt.dispose();

  // and the newline after <|im_end|> really is another reading (the test can fail)
  const full = rewardsOf(model, PROMPTS.map((p, i) => tokenizePreferenceExample(tokenizer, p, [{ role: 'assistant', content: REPLIES[i]! }], 'chatml').inputIds));
  full.forEach((x, i) => expect(Math.abs(x - trained[i]!)).toBeGreaterThan(1e-4));
  model.dispose();
});

test('no reward_read.json (trained elsewhere): every stage reads the last token of the full rendering, PPO appends the newline', async () => {
  const model = loadHfModel(join(dir, 'hf'));
  const fullIds = PROMPTS.map((p, i) => tokenizePreferenceExample(tokenizer, p, [{ role: 'assistant', content: REPLIES[i]! }], 'chatml').inputIds);
  const full = rewardsOf(model, fullIds);

  const ppo = ppoScores(model, turnEndSuffix(tokenizer, 'chatml'));
  expect(ppo.lastRead).toEqual([NEWLINE.at(-1), NEWLINE.at(-1)]);
  close(ppo.scores, full);

  await scoreFile(join(dir, 'hf'), join(dir, 'prefs.jsonl'), join(dir, 'scored-hf.jsonl'), { template: 'chatml' });
  close(readFileSync(join(dir, 'scored-hf.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).reward_chosen), full);
  const rs = await rsScorer(join(dir, 'hf'), { template: 'chatml', batchSize: 4 });
  close(await rs.score(PROMPTS, REPLIES), full);
  rs.dispose();
  const gatt = await gattScorer(join(dir, 'hf'), { template: 'chatml', batchSize: 4 });
  close(await gatt.score(PROMPTS, REPLIES), full);
  gatt.dispose();
  model.dispose();
});

test('rewardInputs: the suffix goes right after a finished response (before its padding), not after an unfinished one', () => {
  const out = rewardInputs([[0, 5, 6, 7, 0], [4, 5, 6, 7, 8]], [[0, 1, 1, 1, 0], [1, 1, 1, 1, 1]], [true, false], [9, 10], 0);
  expect(out).toEqual({
    ids: [[0, 5, 6, 7, 9, 10, 0], [4, 5, 6, 7, 8, 0, 0]],
    mask: [[0, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0, 0]],
  });
});
