import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { run, type CliIo } from '../../src/cli/main.js';
import { readArrowFile } from '../../src/data/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { attachScoreHead, initLlama, llamaConfig, saveHfModel } from '../../src/model/index.js';
import { saveRewardModel } from '../../src/reward/model.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';
let dir: string;

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  dir = mkdtempSync(join(tmpdir(), 'reward-cli-'));
  const tokenizer = await loadTokenizer(TOKENIZER);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId,
  });
  const base = initLlama(cfg, new Rng(1));
  saveHfModel(base, join(dir, 'base'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TOKENIZER, f), join(dir, 'base', f));
  attachScoreHead(base, new Rng(2), { dropLmHead: true });
  saveRewardModel(base, join(dir, 'rm'), { stats: { mean: 1, std: 2 }, tokenizerDir: TOKENIZER, padId: tokenizer.padId });
  base.dispose();
  const row = (i: number) => ({ prompt: [{ role: 'user', content: `Add ${i} and 1.` }], chosen: [{ role: 'assistant', content: `${i + 1}.` }], rejected: [{ role: 'assistant', content: 'No.' }], strength: 'better' });
  writeFileSync(join(dir, 'prefs.jsonl'), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => JSON.stringify(row(i))).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rlhf(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), debug: false };
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await run(argv, io), out, err };
  } finally {
    log.mockRestore();
    stderr.mockRestore();
  }
}

test('rlhf reward score adds reward columns; Arrow out by extension; --normalize uses reward_stats.json', async () => {
  const raw = await rlhf(['reward', 'score', '--model', join(dir, 'rm'), '--data', join(dir, 'prefs.jsonl'), '--out', join(dir, 'raw.jsonl')]);
  expect(raw).toMatchObject({ code: 0 });
  expect(raw.out).toContain('scored 8 rows');
  const rawRows = readFileSync(join(dir, 'raw.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(rawRows[0].strength).toBe('better');
  expect(typeof rawRows[0].reward_chosen).toBe('number');

  const norm = await rlhf(['reward', 'score', '--model', join(dir, 'rm'), '--data', join(dir, 'prefs.jsonl'), '--out', join(dir, 'n.arrow'), '--normalize']);
  expect(norm.code).toBe(0);
  const rows: Record<string, unknown>[] = [];
  for await (const r of readArrowFile(join(dir, 'n.arrow'))) rows.push(r.value as Record<string, unknown>);
  expect(rows).toHaveLength(8);
  rows.forEach((r, i) => {
    expect(r.reward_chosen as number).toBeCloseTo((rawRows[i].reward_chosen - 1) / 2, 5);
    expect(r.reward_rejected as number).toBeCloseTo((rawRows[i].reward_rejected - 1) / 2, 5);
  });
});

test('rlhf reward score on a model without a score head, and rlhf reward without --config, exit 2 with a message', async () => {
  const notRm = await rlhf(['reward', 'score', '--model', join(dir, 'base'), '--data', join(dir, 'prefs.jsonl'), '--out', join(dir, 'x.jsonl')]);
  expect(notRm.code).toBe(2);
  expect(notRm.err).toContain('not a reward model (no score.weight');
  const noConfig = await rlhf(['reward']);
  expect(noConfig.code).toBe(2);
  expect(noConfig.err).toContain('--config FILE is required');
});

test('rlhf reward --config trains and writes final/; the shipped world config validates', async () => {
  const cfgFile = join(dir, 'r.yaml');
  writeFileSync(
    cfgFile,
    `stage: reward\noutput_dir: ${join(dir, 'run')}\nmodel: { path: ${join(dir, 'base')} }\n` +
      `data: { train: ${join(dir, 'prefs.jsonl')}, eval: null, eval_fraction: 0.25 }\nengine: { backend: wasm }\ntracking: { enabled: false }\n`,
  );
  const res = await rlhf(['reward', '--config', cfgFile, 'train.steps=2', 'train.batch_size=2', 'lora.r=2']);
  expect(res.err).toBe('');
  expect(res.code).toBe(0);
  expect(res.out).toMatch(/reward done: 2 steps, eval accuracy \d+\.\d+%/);
  expect(existsSync(join(dir, 'run', 'final', 'reward_stats.json'))).toBe(true);
  expect(existsSync(join(dir, 'run', 'config.resolved.yaml'))).toBe(true);

  const v = await rlhf(['validate', 'configs/reward/world.yaml']);
  expect(v.code).toBe(0);
});
