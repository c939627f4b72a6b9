/**
 * Every family and RoPE variant against the independent numpy float64 reference
 * (scripts/llama_reference.py → test/fixtures/families_ref/<variant>/, written from transformers'
 * equations, not from src/model): logits of a left-padded batch within 1e-4 on wasm, each row of that
 * batch equal to the sequence run alone, greedy continuations identical (batched, left-padded, through
 * the fast decoding path), and a deliberately wrong variant (llama3 scaling ignored) failing.
 */
import { join } from 'node:path';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { loadHfModel, type LlamaModel } from '../../src/model/index.js';
import { generate } from '../../src/generation/generate.js';

const DIR = join('test', 'fixtures', 'families_ref');
const VARIANTS = readdirSync(DIR).sort();

interface Expected {
  input_ids: number[][];
  attention_mask: number[][];
  logits: number[][][];
  greedy_prompts: number[][];
  greedy: number[][];
}
const expectedOf = (name: string, dir = DIR): Expected => JSON.parse(readFileSync(join(dir, name, 'expected.json'), 'utf8')) as Expected;

function maxAbs(a: number[], b: number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

/** Largest |Δ| between our logits and the reference's over the positions that are tokens. */
function worstOnTokens(model: LlamaModel, ex: Expected): number {
  const got = tf.tidy(() => model.forward({
    inputIds: tf.tensor2d(ex.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(ex.attention_mask, undefined, 'int32'),
  }).logits.arraySync());
  let worst = 0;
  ex.attention_mask.forEach((row, b) => row.forEach((m, t) => {
    if (m === 1) worst = Math.max(worst, maxAbs(got[b]![t]!, ex.logits[b]![t]!));
  }));
  return worst;
}

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

it('has one fixture per family and RoPE variant', () => {
  expect(VARIANTS).toEqual(['llama_headdim_bias', 'llama_linear', 'llama_llama3', 'mistral_window', 'qwen2', 'qwen3']);
});

describe.each(VARIANTS)('%s against the numpy float64 reference', (name) => {
  let model: LlamaModel;
  const ex = expectedOf(name);
  beforeAll(() => {
    model = loadHfModel(join(DIR, name));
  });
  afterAll(() => model.dispose());

  it('left-padded batch: logits within 1e-4 at every token', () => {
    const before = tf.memory().numTensors;
    expect(worstOnTokens(model, ex)).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('each row of the left-padded batch equals the sequence run alone', () => {
    ex.input_ids.forEach((row, b) => {
      const tokens = row.filter((_, t) => ex.attention_mask[b]![t] === 1);
      const alone = tf.tidy(() => model.forward({ inputIds: tf.tensor2d([tokens], undefined, 'int32') }).logits.arraySync())[0]!;
      const offset = row.length - tokens.length;
      tokens.forEach((_, i) => expect(maxAbs(alone[i]!, ex.logits[b]![offset + i]!)).toBeLessThan(1e-4));
    });
  });

  it('greedy continuations of a batch of two prompts (left-padded, KV cache) are the reference tokens', () => {
    const out = generate(model, ex.greedy_prompts, { maxNewTokens: ex.greedy[0]!.length, temperature: 0, stopTokenIds: [] });
    expect(out.tokens).toEqual(ex.greedy);
    // And each prompt alone.
    ex.greedy_prompts.forEach((p, i) => {
      expect(generate(model, [p], { maxNewTokens: ex.greedy[i]!.length, temperature: 0, stopTokenIds: [] }).tokens[0]).toEqual(ex.greedy[i]);
    });
  });
});

describe('a deliberately wrong variant fails the reference', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'families-ref-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('llama3 with its rope_scaling dropped (plain θ) misses logits and greedy tokens', () => {
    cpSync(join(DIR, 'llama_llama3'), join(dir, 'llama_llama3'), { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'llama_llama3', 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.rope_scaling;
    writeFileSync(join(dir, 'llama_llama3', 'config.json'), JSON.stringify(cfg));
    const model = loadHfModel(join(dir, 'llama_llama3'));
    try {
      const ex = expectedOf('llama_llama3', dir);
      expect(worstOnTokens(model, ex)).toBeGreaterThan(1e-2);
      const out = generate(model, ex.greedy_prompts, { maxNewTokens: ex.greedy[0]!.length, temperature: 0, stopTokenIds: [] });
      expect(out.tokens).not.toEqual(ex.greedy);
    } finally {
      model.dispose();
    }
  });

  it('qwen3 read as qwen2 (no q/k norm, q/k/v biases expected) is refused at load, not run wrongly', () => {
    cpSync(join(DIR, 'qwen3'), join(dir, 'qwen3'), { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'qwen3', 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'qwen3', 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen2' }));
    expect(() => loadHfModel(join(dir, 'qwen3'))).toThrow(/q_norm\.weight/);
  });
});
