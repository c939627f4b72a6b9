import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import * as tf from '@tensorflow/tfjs-core';
import { runCommand } from '../helpers/cli.js';
import { gattCommand, parseTurns } from '../../src/cli/gatt.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig } from '../../src/model/config.js';
import { loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { modelReplySampler } from '../../src/gatt/sampler.js';
import { initLlama } from '../../src/model/llama.js';
import { packagePath } from '../../src/paths.js';
import { IGNORE_INDEX, loadTokenizer, pickTemplate, tokenizeDialogue, trainTokenizer } from '../../src/tokenizer/index.js';
import { INSTRUCTIONS } from '../../src/world/instructions.js';

/** Run `rlhf gatt ...` with only the gatt command registered; returns what it printed. */
const gatt = (argv: string[]): Promise<string[]> => runCommand(gattCommand, ['gatt', ...argv]);

const dir = mkdtempSync(join(tmpdir(), 'rlhf-gatt-recipe-'));
const modelDir = join(dir, 'chat');
const seedsFile = join(dir, 'dialogues.jsonl');
const configFile = join(dir, 'gatt.yaml');

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, 'What does a cow say? A cow says moo. BEEP. Arr. Thanks for asking. I love cats.\n'.repeat(5));
  await trainTokenizer({ corpusFiles: [corpus], vocabSize: 300, outDir: modelDir });
  const tokenizer = await loadTokenizer(modelDir);
  const model = initLlama(
    llamaConfig({
      vocab_size: tokenizer.vocabSize,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      bos_token_id: tokenizer.bosId,
      eos_token_id: tokenizer.eosId,
      pad_token_id: tokenizer.padId,
      max_position_embeddings: 512,
    }),
    new Rng(5),
  );
  saveHfModel(model, modelDir);
  model.dispose();
  const turns = ['What does a cow say?', 'What does a dog say?', 'Hi.'];
  writeFileSync(seedsFile, Array.from({ length: 6 }, (_, i) => JSON.stringify({ user_turns: turns.slice(0, 1 + (i % 3)) })).join('\n') + '\n');
  writeFileSync(
    configFile,
    [
      'stage: gatt',
      'engine: {backend: cpu, seed: 0}',
      'tracking: {enabled: false}',
      `output_dir: ${join(dir, 'run')}`,
      `model: {path: ${modelDir}}`,
      `data: {dialogues: ${seedsFile}, held_out: 2, instructions: ${packagePath('data', 'world', 'gatt_instructions.json')}, max_length: 400}`,
      'gatt: {max_new_tokens: 4, batch_size: 4, eval_cases: 7, eval_turns: 2, eval_show_turns: [1, 2]}',
      'lora: {r: 2, alpha: 4, dropout: 0, target_modules: [q_proj, v_proj]}',
      'train: {steps: 2, batch_size: 2, eval_every: 0}',
      'checkpoint: {every_steps: 0}',
      'schedule: {warmup_steps: 0}',
    ].join('\n') + '\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('rlhf gatt: synthesise, fine-tune on the last turns, measure adherence before and after', async () => {
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  let lines: string[];
  try {
    // Synthesis alone first (in its own folder): no tensor leaked. (The whole run is not checked:
    // LoRA injection in src/lora leaks its initial values, reported to the lead.)
    const before = tf.memory().numTensors;
    await gatt(['synth', '--config', configFile, `output_dir=${join(dir, 'synth-only')}`]);
    expect(tf.memory().numTensors).toBe(before);
    lines = await gatt(['--config', configFile, 'sft.save_merged=true']);
  } finally {
    stderr.mockRestore();
  }
  const run = join(dir, 'run');
  expect(lines.join('\n')).toMatch(/^gatt done: \d synthesised rows, 2 steps, final loss \d+\.\d{4}\noutput: /);

  // The dataset: 4 training seeds (2 held out), instruction as the system message only, repaired answers.
  const rows = readFileSync(join(run, 'synth', 'gatt_train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const stats = JSON.parse(readFileSync(join(run, 'synth', 'stats.json'), 'utf8'));
  expect(stats.stats).toMatchObject({ dialogues: 4, answers: 7 });
  // A random model's bytes are sometimes beyond repair (no letters to upper-case, no word Zib has): those rows are dropped.
  expect(stats.stats.rows + stats.stats.droppedRows).toBe(4);
  expect(rows).toHaveLength(stats.stats.rows);
  expect(rows.length).toBeGreaterThan(0);
  const tokenizer = await loadTokenizer(modelDir);
  for (const row of rows) {
    expect(row.train_on).toBe('last');
    expect(row.messages[0].role).toBe('system');
    expect(row.messages.filter((m: { role: string }) => m.role === 'system')).toHaveLength(1);
    expect(row.messages.slice(1).some((m: { content: string }) => m.content.includes(row.messages[0].content))).toBe(false);
    expect(row.instruction_ids.every((id: string) => INSTRUCTIONS.some((i) => i.id === id))).toBe(true);
    // Only the last answer carries loss.
    const { labels } = tokenizeDialogue(tokenizer, row.messages, { template: 'llama2', strategy: 'train_on_last' });
    const upToLast = tokenizeDialogue(tokenizer, row.messages.slice(0, -1), { template: 'llama2', strategy: 'train_on_last' }).inputIds.length;
    expect(labels.slice(0, upToLast).every((l) => l === IGNORE_INDEX)).toBe(true);
    expect(labels.slice(upToLast).some((l) => l !== IGNORE_INDEX)).toBe(true);
  }

  // The SFT recipe ran with train_on_last on the synthesised file; its resolved config is an sft config.
  const resolved = readFileSync(join(run, 'config.resolved.yaml'), 'utf8');
  expect(resolved).toMatch(/^stage: sft$/m);
  expect(resolved).toMatch(/strategy: train_on_last/);
  expect(readFileSync(join(run, 'synth', 'gatt.resolved.yaml'), 'utf8')).toMatch(/^stage: gatt$/m);
  expect(existsSync(join(run, 'final', 'adapter_model.safetensors'))).toBe(true);

  const adherence = JSON.parse(readFileSync(join(run, 'adherence.json'), 'utf8'));
  expect(adherence.before.dialogues).toBe(7);
  expect(adherence.after.all).toHaveLength(2);
  expect(Object.keys(adherence.after.by_family)).toEqual(['language', 'persona', 'style', 'ending', 'hobby']);

  // gatt synth with the same settings reuses the dataset.
  const again = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const synth = await gatt(['synth', '--config', configFile, 'sft.save_merged=true']);
    expect(synth.join('\n')).toMatch(/^gatt synth: \d rows from 4 dialogues \(7 answers; .*\) \(reused\)/);
  } finally {
    again.mockRestore();
  }

  // gatt eval on the merged output prints the table.
  const table = await gatt(['eval', '--model', join(run, 'final', 'merged'), '--dialogues', seedsFile, '--held-out', '2', '--cases', '7', '--turns', '1,2', '--max-new-tokens', '4', '--backend', 'cpu']);
  expect(table.join('\n').split('\n')).toEqual([
    'instruction adherence (%) by turn — 7 dialogues',
    'family         t=1     t=2',
    expect.stringMatching(/^language +\d+\.\d +\d+\.\d$/),
    expect.stringMatching(/^persona /),
    expect.stringMatching(/^style /),
    expect.stringMatching(/^ending /),
    expect.stringMatching(/^hobby /),
    expect.stringMatching(/^all /),
  ]);
});

test('--turns is a list of turn numbers', () => {
  expect(parseTurns('1, 2,4,6,20')).toEqual([1, 2, 4, 6, 20]);
  expect(() => parseTurns('1,x')).toThrow('--turns 1,x: expected a comma-separated list of turn numbers ≥ 1');
});


test('data.mix: the fine-tuning trains on the synthesised rows + round(rows × mix_ratio) plain rows (synth/mix_train.jsonl)', async () => {
  const mixFile = join(dir, 'plain.jsonl');
  writeFileSync(mixFile, ['A', 'B', 'C'].map((x) => JSON.stringify({ prompt: `Say ${x}.`, completion: x, reward: 1 })).join('\n') + '\n');
  const out = join(dir, 'run-mix');
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await gatt(['--config', configFile, `output_dir=${out}`, 'gatt.evaluate=false', `data.mix=[${mixFile}]`, 'data.mix_ratio=2']);
  } finally {
    stderr.mockRestore();
  }
  const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const synth = read(join(out, 'synth', 'gatt_train.jsonl'));
  const mixed = read(join(out, 'synth', 'mix_train.jsonl'));
  expect(mixed.slice(0, synth.length)).toEqual(synth);
  const plain = mixed.slice(synth.length);
  expect(plain).toHaveLength(2 * synth.length);
  for (const row of plain) expect(row).toEqual({ messages: [{ role: 'user', content: expect.stringMatching(/^Say [ABC]\.$/) }, { role: 'assistant', content: expect.any(String) }] });
  expect(readFileSync(join(out, 'config.resolved.yaml'), 'utf8')).toMatch(/train: .*mix_train\.jsonl/);
  // `rlhf gatt synth` alone writes the same fine-tuning file (an export to TRL/OpenRLHF trains on it) and names it.
  const synthOnly = join(dir, 'run-mix-synth');
  const lines = await gatt(['synth', '--config', configFile, `output_dir=${synthOnly}`, `data.mix=[${mixFile}]`, 'data.mix_ratio=2']);
  expect(lines.join('\n')).toContain(`fine-tuning rows (with data.mix): ${join(synthOnly, 'synth', 'mix_train.jsonl')}`);
  expect(read(join(synthOnly, 'synth', 'mix_train.jsonl'))).toEqual(mixed);

  // data.mix_answers=model: the same rows, each answer the input model's greedy reply to its prompt.
  const selfOut = join(dir, 'run-mix-self');
  const before = tf.memory().numTensors;
  await gatt(['synth', '--config', configFile, `output_dir=${selfOut}`, `data.mix=[${mixFile}]`, 'data.mix_ratio=2', 'data.mix_answers=model']);
  expect(tf.memory().numTensors).toBe(before);
  const selfMixed = read(join(selfOut, 'synth', 'mix_train.jsonl'));
  const tokenizer = await loadTokenizer(modelDir);
  const model = loadHfModel(modelDir);
  const greedy = modelReplySampler(model, tokenizer, { template: pickTemplate('auto', tokenizer), maxNewTokens: 4, temperature: 0, batchSize: 1 });
  const expected = await greedy(['A', 'B', 'C'].map((x) => [{ role: 'user', content: `Say ${x}.` }]));
  model.dispose();
  expect(selfMixed.slice(0, synth.length)).toEqual(synth);
  selfMixed.slice(synth.length).forEach((row, i) => {
    const prompt = mixed[synth.length + i].messages[0];
    expect(row).toEqual({ messages: [prompt, { role: 'assistant', content: expected['ABC'.indexOf(prompt.content[4])] }] });
  });
});
