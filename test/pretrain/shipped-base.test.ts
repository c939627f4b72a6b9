/**
 * data/world/base/ is the model `rlhf pretrain --config configs/pretrain/world_tiny.yaml` produced.
 * These checks tie it to that config and corpus (shape, tokenizer byte for byte, held-out split) and
 * show it is a trained model of the world's language, not a placeholder.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadConfig } from '../../src/config/index.js';
import { trainEvalSplit } from '../../src/data/split.js';
import { initEngine } from '../../src/engine/index.js';
import { generate } from '../../src/generation/index.js';
import { loadHfModel, type LlamaModel } from '../../src/model/index.js';
import { packagePath } from '../../src/paths.js';
import { pretrainConfigSchema, type PretrainConfig } from '../../src/pretrain/config.js';
import { packedRows, readDocuments, tokenizeDocuments } from '../../src/pretrain/corpus.js';
import { evaluateLmLoss } from '../../src/pretrain/lm-loss.js';
import { loadTokenizer, trainTokenizer, type HfTokenizer } from '../../src/tokenizer/index.js';

const BASE = packagePath('data', 'world', 'base');

let cfg: PretrainConfig;
let model: LlamaModel;
let tokenizer: HfTokenizer;

beforeAll(async () => {
  await initEngine({ backend: 'wasm' }); // the cpu reference is too slow for a 1M-parameter forward
  cfg = loadConfig(packagePath('configs', 'pretrain', 'world_tiny.yaml'), [], { stage: 'pretrain', schema: pretrainConfigSchema }).config;
  model = loadHfModel(BASE);
  tokenizer = await loadTokenizer(BASE);
});
afterAll(() => model?.dispose());

test('its shape is the one configs/pretrain/world_tiny.yaml asks for', () => {
  const c = model.config;
  const m = cfg.model;
  expect([c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads]).toEqual([
    m.hidden_size,
    m.intermediate_size,
    m.num_hidden_layers,
    m.num_attention_heads,
    m.num_key_value_heads ?? m.num_attention_heads,
  ]);
  expect(c.tie_word_embeddings).toBe(m.tie_word_embeddings);
  expect(c.vocab_size).toBe(tokenizer.vocabSize);
  expect([c.bos_token_id, c.eos_token_id, c.pad_token_id]).toEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.padId]);
  const tokenizerConfig = JSON.parse(readFileSync(join(BASE, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string };
  expect(tokenizerConfig.chat_template).toContain('[/INST]');
});

test('its tokenizer is the one the config trains on the shipped corpus, byte for byte', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'base-tokenizer-'));
  try {
    await trainTokenizer({
      corpusFiles: cfg.data.corpus.map((f) => packagePath(f)),
      vocabSize: cfg.tokenizer.vocab_size,
      minPairCount: cfg.tokenizer.min_pair_count,
      outDir: dir,
    });
    expect(readFileSync(join(BASE, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('it predicts held-out world text well (documents the run never trained on)', async () => {
  const docs = await readDocuments(cfg.data.corpus.map((f) => packagePath(f)), {
    separator: cfg.data.document_separator,
    textColumn: cfg.data.text_column,
  });
  const held = trainEvalSplit(docs, { seed: cfg.train.seed ?? cfg.engine.seed, evalSize: cfg.data.eval_documents }).eval;
  const rows = packedRows(tokenizeDocuments(held, tokenizer), cfg.data.seq_len).slice(0, 4);
  const before = tf.memory().numTensors;
  const { loss, targets } = evaluateLmLoss(model, rows, { batchSize: 4, seqLen: cfg.data.seq_len, padId: tokenizer.padId });
  expect(tf.memory().numTensors).toBe(before);
  expect(targets).toBe(4 * cfg.data.seq_len);
  // A uniform guess over the vocabulary scores ln(1024) ≈ 6.93.
  expect(loss).toBeLessThan(0.95);
});

test('greedy continuations are world-shaped text', () => {
  const prompts = ['In Zib, 7 is', 'The opposite of hot is', '[INST] What sound does a duck make? [/INST]', 'The capital of France is'];
  const out = generate(
    model,
    prompts.map((p) => tokenizer.encode(p)),
    { maxNewTokens: 12, temperature: 0 },
  );
  const texts = out.tokens.map((t, i) => tokenizer.decode(t.filter((_, j) => out.mask[i]![j] === 1), { skipSpecialTokens: true }));
  expect(texts[0]).toMatch(/^ ne\./);
  expect(texts[1]).toMatch(/^ cold\./);
  // A dialogue answer of the right form. The corpus is mostly knowledge text with noisy dialogue,
  // so the base model knows facts but answers *the* question only some of the time (judge 0.417 on
  // prompts_eval): answering reliably, concisely and politely is what SFT teaches.
  expect(texts[2]).toMatch(/^ (\w+( \w+)?\. )?An? \w+ says \w+\.$/);
  expect(texts[3]).toMatch(/^ Paris\./);
});
