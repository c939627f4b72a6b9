/**
 * `rlhf ppo --config ppo/world_lora` from another working directory, with a Parquet prompts file:
 * prompts are read through src/data (JSONL, Arrow, Parquet; TRL columns) and a relative data path
 * missing from the working directory is the package's shipped data (here the held-out eval
 * prompts, data/world/prompts_eval.jsonl), as in the other stages. Tiny models, one iteration.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { run, type CliIo } from '../../src/cli/main.js';
import { writeParquetFile } from '../../src/data/index.js';
import { readPrompts } from '../../src/data/prompts.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { attachScoreHead, initLlama, llamaConfig, saveHfModel } from '../../src/model/index.js';
import { readSafetensorsHeader } from '../../src/model/io/safetensors.js';
import { packagePath } from '../../src/paths.js';
import { saveRewardModel } from '../../src/reward/model.js';

const WORLD_TOKENIZER = packagePath('data', 'world', 'base');
const REPO = process.cwd();
let dir: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  dir = mkdtempSync(join(tmpdir(), 'ppo-cli-'));
  const cfg = llamaConfig({
    vocab_size: 1024, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
    pad_token_id: 0, bos_token_id: 1, eos_token_id: 2,
  });
  const policy = initLlama(cfg, new Rng(1));
  saveHfModel(policy, join(dir, 'policy'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(WORLD_TOKENIZER, f), join(dir, 'policy', f));
  policy.dispose();
  const rm = initLlama(cfg, new Rng(2));
  attachScoreHead(rm, new Rng(3), { dropLmHead: true });
  saveRewardModel(rm, join(dir, 'rm'), { stats: { mean: 0, std: 1 }, tokenizerDir: WORLD_TOKENIZER, padId: 0, readAt: 'turn_end' });
  rm.dispose();
  // 6 of the world's training prompts, as TRL prompt rows (messages) in a Parquet file
  const prompts = (await readPrompts(packagePath('data', 'world', 'prompts.jsonl'))).slice(0, 6);
  await writeParquetFile(join(dir, 'prompts.parquet'), prompts.map((p) => ({ prompt: p })));
});
afterAll(() => {
  process.chdir(REPO);
  rmSync(dir, { recursive: true, force: true });
});

async function rlhf(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), debug: false };
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (out += a.join(' ') + '\n'));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((t) => { err += String(t); return true; });
  try {
    return { code: await run(argv, io), out, err };
  } finally {
    log.mockRestore();
    stderr.mockRestore();
  }
}

test('rlhf ppo --config ppo/world_lora runs from another directory on a Parquet prompts file (shipped eval prompts found)', async () => {
  process.chdir(dir);
  try {
    const r = await rlhf([
      'ppo', '--config', 'ppo/world_lora',
      `model.path=${join(dir, 'policy')}`, `model.reward_model=${join(dir, 'rm')}`,
      'data.prompts=prompts.parquet', 'data.eval_limit=2',
      'engine.backend=cpu', 'tracking.enabled=false', 'train.steps=1', 'train.rollout_batch_size=2',
      'ppo.mini_batch_size=1', 'optim.grad_accum=2', 'ppo.ppo_epochs=1', 'lora.r=2', 'lora.target_modules=[q_proj]',
      'generation.max_new_tokens=3', 'generation.eval_batch_size=2',
    ]);
    expect(r.err).not.toMatch(/not valid JSON|cannot read/);
    expect(r.code).toBe(0);
    const out = join(dir, 'runs', 'world', 'ppo');
    expect(existsSync(join(out, 'final', 'adapter_model.safetensors'))).toBe(true);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // eval before and after on the shipped held-out prompts (judge included), one iteration between
    expect(metrics.filter((m) => 'eval/judge_score' in m)).toHaveLength(2);
    expect(metrics.filter((m) => 'objective/kl' in m)).toHaveLength(1);
  } finally {
    process.chdir(REPO);
  }
}, 120_000);

test('rlhf ppo with ppo.critic=reward_model_lora: the checkpoint\'s critic is the adapters on the reward model and the value head', async () => {
  const out = join(dir, 'lora-critic');
  const r = await rlhf([
    'ppo', '--config', 'ppo/world_lora',
    `model.path=${join(dir, 'policy')}`, `model.reward_model=${join(dir, 'rm')}`, `output_dir=${out}`,
    `data.prompts=${join(dir, 'prompts.parquet')}`, 'data.eval_prompts=null', 'eval.judge=false', 'ppo.critic=reward_model_lora',
    'engine.backend=cpu', 'tracking.enabled=false', 'train.steps=1', 'train.rollout_batch_size=2', 'checkpoint.every_steps=1',
    'ppo.mini_batch_size=2', 'ppo.ppo_epochs=1', 'lora.r=2', 'lora.target_modules=[q_proj]', 'generation.max_new_tokens=3',
  ]);
  expect(r.code).toBe(0);
  const names = readSafetensorsHeader(join(out, 'checkpoints', 'step_1', 'critic.safetensors')).entries.map((e) => e.name).sort();
  expect(names).toEqual(['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.q_proj.lora_B.weight', 'value_head.weight']);
}, 120_000);
