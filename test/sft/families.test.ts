/**
 * The SFT stage on each non-llama family, with that family's tokenizer and chat template (the
 * shipped tiny_lora config with model.path= pointing at the folder): LoRA steps train, the merged
 * output keeps the family's config keys and reloads, and `rlhf generate --chat` runs on it.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as rlhf } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig, type LlamaConfig } from '../../src/model/config.js';
import { loadHfModel, saveHfModel } from '../../src/model/io/hf.js';
import { initLlama } from '../../src/model/llama.js';
import { packagePath } from '../../src/paths.js';
import { sftConfigSchema } from '../../src/sft/config.js';
import { runSft } from '../../src/sft/recipe.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { dialogue } from './fixture.js';

let dir: string;
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  dir = mkdtempSync(join(tmpdir(), 'sft-families-'));
  writeFileSync(join(dir, 'train.jsonl'), Array.from({ length: 16 }, (_, i) => JSON.stringify(dialogue(i))).join('\n') + '\n');
  writeFileSync(join(dir, 'eval.jsonl'), [3, 5].map((i) => JSON.stringify(dialogue(i))).join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CASES: Array<[string, string, Partial<LlamaConfig>]> = [
  ['qwen3 with the Qwen2.5 tokenizer', 'qwen2', { model_type: 'qwen3', head_dim: 8, rope_theta: 1000000 }],
  ['mistral (window 6) with the Llama 3 tokenizer', 'llama3', { model_type: 'mistral', sliding_window: 6 }],
  ['qwen2 with the SmolLM2 tokenizer', 'smollm2', { model_type: 'qwen2', tie_word_embeddings: true }],
];

it.each(CASES)('%s: LoRA SFT trains, the merged model keeps its family and generates', async (_name, tokenizerFamily, family) => {
  const base = join(dir, `${family.model_type}-base`);
  mkdirSync(base, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join('test', 'fixtures', 'tokenizers-families', tokenizerFamily, f), join(base, f));
  const tokenizer = await loadTokenizer(base);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
    bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId, initializer_range: 0.2, ...family,
  });
  const model = initLlama(cfg, new Rng(3));
  saveHfModel(model, base);
  model.dispose();

  const out = join(dir, `${family.model_type}-sft`);
  const resolved = loadConfig(packagePath('configs', 'sft', 'tiny_lora.yaml'), [
    `model.path=${base}`, `data.train=${join(dir, 'train.jsonl')}`, `data.eval=${join(dir, 'eval.jsonl')}`, `output_dir=${out}`,
    'train.steps=6', 'sft.save_merged=true', 'data.max_length=96',
  ], { stage: 'sft', schema: sftConfigSchema });
  const result = await runSft(resolved, { progress: false, log: () => undefined });
  const losses = result.losses.map((l) => l.loss);
  expect(losses).toHaveLength(6);
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(losses[5]!).toBeLessThan(losses[0]!);

  const merged = join(result.finalDir, 'merged');
  const saved = JSON.parse(readFileSync(join(merged, 'config.json'), 'utf8')) as Record<string, unknown>;
  expect([saved.model_type, saved.sliding_window ?? null, saved.head_dim]).toEqual([family.model_type, family.sliding_window ?? null, family.head_dim ?? 8]);
  loadHfModel(merged).dispose();

  const printed: string[] = [];
  const io = { out: (t: string) => void printed.push(t), err: (t: string) => void printed.push(t), debug: false };
  const log = console.log;
  const stderr = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void printed.push(a.join(' '));
  process.stderr.write = ((t: string) => printed.push(String(t)) > 0) as typeof process.stderr.write;
  try {
    const code = await rlhf(['generate', '--model', merged, '--chat', '--prompt', 'What does a cat say?', '--max-new-tokens', '6', '--temperature', '0'], io);
    expect({ code, printed }).toMatchObject({ code: 0 });
  } finally {
    console.log = log;
    process.stderr.write = stderr;
  }
});
