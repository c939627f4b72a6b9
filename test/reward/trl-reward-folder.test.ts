/**
 * Coming back from TRL / OpenRLHF: their reward models are HF folders with a
 * LlamaForSequenceClassification config, `score.weight` and no `reward_stats.json`.
 * `rlhf reward score` scores them raw; `--normalize` and PPO's rewards.normalize refuse and name
 * the missing file until `--write-stats` computes it on the user's pairs.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { run, type CliIo } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { attachScoreHead, initLlama, llamaConfig, saveHfModel } from '../../src/model/index.js';
import { packagePath } from '../../src/paths.js';
import { ppoConfigSchema } from '../../src/ppo/config.js';
import { runPpo } from '../../src/ppo/recipe.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

const TOKENIZER = 'test/fixtures/tokenizers/byte-level-bpe';
let dir: string;
let trlRm: string;

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  dir = mkdtempSync(join(tmpdir(), 'trl-rm-'));
  const tokenizer = await loadTokenizer(TOKENIZER);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, pad_token_id: tokenizer.padId, bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId,
  });
  const model = initLlama(cfg, new Rng(1));
  saveHfModel(model, join(dir, 'policy'));
  attachScoreHead(model, new Rng(2), { dropLmHead: true });
  // As transformers writes a RewardTrainer output: bf16 weights, a sequence-classification config
  // with one label, no generation_config.json and no reward_stats.json.
  trlRm = join(dir, 'trl-rm');
  saveHfModel(model, trlRm, { dtype: 'BF16' });
  model.dispose();
  const config = JSON.parse(readFileSync(join(trlRm, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.torch_dtype;
  Object.assign(config, { architectures: ['LlamaForSequenceClassification'], id2label: { '0': 'LABEL_0' }, label2id: { LABEL_0: 0 }, dtype: 'bfloat16', use_cache: false, transformers_version: '4.57.1' });
  writeFileSync(join(trlRm, 'config.json'), JSON.stringify(config, null, 2));
  rmSync(join(trlRm, 'generation_config.json'), { force: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(join(TOKENIZER, f), join(trlRm, f));
    copyFileSync(join(TOKENIZER, f), join(dir, 'policy', f));
  }
  const row = (i: number) => ({ prompt: [{ role: 'user', content: `Add ${i} and 1.` }], chosen: [{ role: 'assistant', content: `${i + 1}.` }], rejected: [{ role: 'assistant', content: 'No.' }] });
  writeFileSync(join(dir, 'prefs.jsonl'), [0, 1, 2, 3, 4, 5].map((i) => JSON.stringify(row(i))).join('\n') + '\n');
  writeFileSync(join(dir, 'prompts.jsonl'), [0, 1, 2, 3].map((i) => JSON.stringify({ prompt: [{ role: 'user', content: `Add ${i} and 2.` }] })).join('\n') + '\n');
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

const readJsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);

test('a TRL-format reward model is scored raw; --normalize refuses naming reward_stats.json; --write-stats computes it', async () => {
  const score = (out: string, ...flags: string[]) => rlhf(['reward', 'score', '--model', trlRm, '--data', join(dir, 'prefs.jsonl'), '--out', join(dir, out), ...flags]);
  const raw = await score('raw.jsonl');
  expect(raw.code).toBe(0);
  expect(raw.out).toContain('scored 6 rows');
  const rows = readJsonl(join(dir, 'raw.jsonl'));
  const rewards = rows.flatMap((r) => [r.reward_chosen!, r.reward_rejected!]);
  expect(rewards.every(Number.isFinite)).toBe(true);
  expect(new Set(rewards.map((r) => r.toFixed(6))).size).toBeGreaterThan(1); // the score head is read, not zeros

  const refused = await score('n.jsonl', '--normalize');
  expect(refused.code).toBe(2);
  expect(refused.err).toContain(`--normalize: ${join(trlRm, 'reward_stats.json')} is missing`);
  expect(refused.err).toContain('--write-stats');
  expect(existsSync(join(dir, 'n.jsonl'))).toBe(false);

  // Population mean / std of every reward (both sides of each pair), as the reward stage computes them.
  const mean = rewards.reduce((s, r) => s + r, 0) / rewards.length;
  const std = Math.sqrt(rewards.reduce((s, r) => s + (r - mean) ** 2, 0) / rewards.length);
  const written = await score('w.jsonl', '--write-stats', '--normalize');
  expect(written.code).toBe(0);
  const stats = JSON.parse(readFileSync(join(trlRm, 'reward_stats.json'), 'utf8')) as { mean: number; std: number; count: number };
  expect(stats.mean).toBeCloseTo(mean, 6);
  expect(stats.std).toBeCloseTo(std, 6);
  expect(stats.count).toBe(12);
  readJsonl(join(dir, 'w.jsonl')).forEach((r, i) => {
    expect(r.reward_chosen).toBeCloseTo((rows[i]!.reward_chosen! - mean) / std, 5);
    expect(r.reward_rejected).toBeCloseTo((rows[i]!.reward_rejected! - mean) / std, 5);
  });
  rmSync(join(trlRm, 'reward_stats.json'));
});

test('PPO with rewards.normalize on a reward model without reward_stats.json refuses before training, naming the file', async () => {
  const resolved = loadConfig(packagePath('configs', 'ppo', 'world_lora.yaml'), [
    `model.path=${join(dir, 'policy')}`, `model.reward_model=${trlRm}`, `data.prompts=${join(dir, 'prompts.jsonl')}`,
    'data.eval_prompts=null', 'eval.judge=false', `output_dir=${join(dir, 'ppo')}`, 'tracking.enabled=false', 'train.rollout_batch_size=4',
  ], { stage: 'ppo', schema: ppoConfigSchema });
  await expect(runPpo(resolved, { log: () => {} })).rejects.toThrow(
    `rewards.normalize: ${join(trlRm, 'reward_stats.json')} is missing (reward models trained by TRL or OpenRLHF have none)`,
  );
  expect(existsSync(join(dir, 'ppo', 'checkpoints'))).toBe(false);
});
