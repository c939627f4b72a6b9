import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { generateText, generationDefaults } from '../../src/generation/text.js';
import { llamaConfig } from '../../src/model/config.js';
import { saveHfModel } from '../../src/model/io/hf.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { injectLora, loraAdapters, saveAdapter, unloadLora } from '../../src/lora/index.js';
import { loadTokenizer, trainTokenizer, type HfTokenizer } from '../../src/tokenizer/index.js';

let dir: string;
let model: LlamaModel;
let tokenizer: HfTokenizer;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  dir = mkdtempSync(join(tmpdir(), 'gen-'));
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, 'the cat sat on the mat. the dog sat on the log.\n'.repeat(20));
  await trainTokenizer({ corpusFiles: [corpus], vocabSize: 280, outDir: dir });
  tokenizer = await loadTokenizer(dir);
  const cfg = llamaConfig({
    vocab_size: tokenizer.vocabSize, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
    num_attention_heads: 2, initializer_range: 0.5,
    bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId,
  });
  model = initLlama(cfg, new Rng(2));
  saveHfModel(model, dir);
});
afterAll(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('generateText encodes, generates and decodes each prompt; chat wraps it in the template', () => {
  const opts = { maxNewTokens: 6, temperature: 0, topK: 0, topP: 1, rng: new Rng(0) };
  const [plain] = generateText(model, tokenizer, ['the cat'], opts);
  expect(plain!.prompt_ids).toEqual(tokenizer.encode('the cat'));
  expect(plain!.completion_ids.length).toBeGreaterThan(0);
  expect(plain!.completion_ids.length).toBeLessThanOrEqual(6);
  expect(plain!.completion).toBe(tokenizer.decode(plain!.completion_ids, { skipSpecialTokens: true }));
  const [chat] = generateText(model, tokenizer, ['the cat'], { ...opts, chatTemplate: 'chatml' });
  expect(tokenizer.decode(chat!.prompt_ids)).toBe('<|im_start|>user\nthe cat<|im_end|>\n<|im_start|>assistant\n');
});

test('generation_config.json defaults: greedy unless do_sample', () => {
  expect(generationDefaults(dir)).toEqual({ temperature: 0, topK: 0, topP: 1, maxNewTokens: 64 });
  const other = mkdtempSync(join(tmpdir(), 'gc-'));
  writeFileSync(join(other, 'generation_config.json'), JSON.stringify({ do_sample: true, temperature: 0.6, top_p: 0.9, max_new_tokens: 20 }));
  expect(generationDefaults(other)).toEqual({ temperature: 0.6, topK: 50, topP: 0.9, maxNewTokens: 20 });
  rmSync(other, { recursive: true, force: true });
});

test('rlhf generate --json prints one object per prompt, same seed same output', async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => void lines.push(s);
  const io = { out: (s: string) => void lines.push(s), err: (s: string) => void lines.push('ERR ' + s), debug: false };
  const argv = ['generate', '--model', dir, '--prompt', 'the cat', '--prompt', 'a dog sat', '--json',
    '--temperature', '0.8', '--top-k', '20', '--seed', '3', '--max-new-tokens', '5', '--backend', 'cpu'];
  try {
    expect(await run(argv, io)).toBe(0);
    expect(await run(argv, io)).toBe(0);
  } finally {
    console.log = log;
  }
  expect(lines).toHaveLength(4);
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(Object.keys(objs[0]!)).toEqual(['prompt', 'completion', 'prompt_ids', 'completion_ids']);
  expect(objs[1]!.prompt).toBe('a dog sat');
  expect(objs.slice(2)).toEqual(objs.slice(0, 2));
});

test('rlhf generate --adapter applies a PEFT adapter (same tokens as the adapter in memory)', async () => {
  injectLora(model, { targetModules: ['q_proj', 'v_proj', 'up_proj'], r: 2, alpha: 16, rng: new Rng(4) });
  const rng = new Rng(5);
  for (const a of loraAdapters(model).values()) {
    tf.tidy(() => a.B.assign(tf.tensor(rng.fillNormal(new Float32Array(a.B.size), 3), a.B.shape)));
  }
  const adapterDir = join(dir, 'adapter');
  saveAdapter(model, adapterDir);
  const opts = { maxNewTokens: 6, temperature: 0, topK: 0, topP: 1, rng: new Rng(0) };
  const withAdapter = generateText(model, tokenizer, ['the dog'], opts)[0]!;
  unloadLora(model, { merge: false });
  const bare = generateText(model, tokenizer, ['the dog'], opts)[0]!;
  expect(withAdapter.completion_ids).not.toEqual(bare.completion_ids);

  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => void lines.push(s);
  const io = { out: (s: string) => void lines.push(s), err: (s: string) => void lines.push('ERR ' + s), debug: false };
  try {
    expect(await run(['generate', '--model', dir, '--adapter', adapterDir, '--prompt', 'the dog', '--json',
      '--temperature', '0', '--max-new-tokens', '6', '--backend', 'cpu'], io)).toBe(0);
  } finally {
    console.log = log;
  }
  expect((JSON.parse(lines[0]!) as { completion_ids: number[] }).completion_ids).toEqual(withAdapter.completion_ids);
});
