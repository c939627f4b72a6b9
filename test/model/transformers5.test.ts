/**
 * Checkpoints saved by Hugging Face `transformers` 5.x itself (not by us): tiny random-weight models
 * of every supported family, made by scripts/device/hf_family_fixtures.py with transformers 5.17 /
 * torch 2.11 / PEFT 0.21, with what transformers computed on them recorded in reference.json
 * (eager attention, float32): logits for two fixed rows, a 20-token greedy continuation, the
 * sequence-classification score of a right-padded batch, and the modules PEFT's `all-linear` picks.
 * Their config.json files use transformers 5's `rope_parameters` spelling.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { loadHfModel } from '../../src/model/index.js';
import { generate } from '../../src/generation/generate.js';
import { adapterStateDict, injectLora, loadAdapter, resolveTargetModules, ALL_LINEAR } from '../../src/lora/index.js';
import { readSafetensorsHeader } from '../../src/model/index.js';
import { Rng } from '../../src/engine/rng.js';

const DIR = join('test', 'fixtures', 'transformers5');

interface Reference {
  model_type: string;
  input_ids: number[][];
  logits: number[][][];
  greedy: number[];
  seqcls_input_ids: number[][];
  seqcls_scores: number[];
  peft_all_linear_targets: string[];
}
const { results } = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as { results: Record<string, Reference> };
/** Every checkpoint here is of a family computed here (refusals: test/model/families.test.ts). */
const variants = Object.keys(results);

function reference(name: string): Reference {
  const r = results[name];
  if (r === undefined) throw new Error(`no reference for ${name}`);
  return r;
}

function maxAbsDiff(a: number[][][], b: number[][][]): number {
  let m = 0;
  a.forEach((rows, i) => rows.forEach((row, j) => row.forEach((v, k) => (m = Math.max(m, Math.abs(v - b[i]![j]![k]!))))));
  return m;
}

describe.each(['wasm', 'cpu'] as const)('checkpoints saved by transformers 5 on %s', (backend) => {
  beforeAll(async () => {
    await initEngine({ backend });
  });

  it.each(variants)('%s: logits within 1e-4 of transformers', (name) => {
    const ref = reference(name);
    const model = loadHfModel(join(DIR, name));
    try {
      const logits = tf.tidy(() => model.forward({ inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32') }).logits.arraySync());
      expect(maxAbsDiff(logits, ref.logits)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });

  it.each(variants)('%s: greedy continuation identical to transformers generate (KV cache)', (name) => {
    const ref = reference(name);
    const model = loadHfModel(join(DIR, name));
    try {
      const out = generate(model, [ref.input_ids[0]!], { maxNewTokens: ref.greedy.length, temperature: 0, stopTokenIds: [] });
      expect(out.tokens[0]).toEqual(ref.greedy);
    } finally {
      model.dispose();
    }
  });
});

describe('transformers 5 sequence classification and PEFT folders', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
  });

  it.each(variants.filter((v) => hasFolder(`${v}_seqcls`)))('%s_seqcls: score at the last non-pad token equals transformers', (name) => {
    const ref = reference(name);
    const model = loadHfModel(join(DIR, `${name}_seqcls`));
    try {
      const scores = tf.tidy(() => {
        const ids = ref.seqcls_input_ids;
        const mask = ids.map((row) => row.map((t) => (t === 0 ? 0 : 1)));
        const { hidden } = model.hiddenStates({ inputIds: tf.tensor2d(ids, undefined, 'int32'), attentionMask: tf.tensor2d(mask, undefined, 'int32') });
        const w = model.param('score.weight'); // [1, H]
        const all = tf.matMul(tf.reshape(hidden, [-1, hidden.shape[2]]), w, false, true).reshape([ids.length, -1]).arraySync() as number[][];
        return ids.map((row, b) => all[b]![row.reduce((last, t, i) => (t !== 0 ? i : last), 0)]);
      });
      scores.forEach((s, b) => expect(s).toBeCloseTo(ref.seqcls_scores[b]!, 4));
    } finally {
      model.dispose();
    }
  });

  it.each(variants)('%s: all-linear targets the modules PEFT targets', (name) => {
    const model = loadHfModel(join(DIR, name));
    try {
      expect([...resolveTargetModules(model, ALL_LINEAR)].sort()).toEqual(reference(name).peft_all_linear_targets);
    } finally {
      model.dispose();
    }
  });

  it.each(variants.filter((v) => hasFolder(`${v}_lora`)))('%s_lora: our all-linear adapter writes the tensor names and shapes PEFT 0.21 wrote', (name) => {
    const model = loadHfModel(join(DIR, name));
    try {
      injectLora(model, { targetModules: ALL_LINEAR, r: 4, alpha: 8, rng: new Rng(1) });
      const ours = [...adapterStateDict(model)].map(([k, t]) => `${k} [${t.shape}]`).sort();
      const peft = readSafetensorsHeader(join(DIR, `${name}_lora`, 'adapter_model.safetensors')).entries.map((e) => `${e.name} [${e.shape}]`).sort();
      expect(ours).toEqual(peft);
    } finally {
      model.dispose();
    }
  });

  it.each(variants.filter((v) => hasFolder(`${v}_lora`)))('%s_lora: a PEFT 0.21 adapter folder loads (every key placed)', (name) => {
    const model = loadHfModel(join(DIR, name));
    try {
      const config = loadAdapter(model, join(DIR, `${name}_lora`));
      expect(config.r).toBe(4);
      expect(model.adapters.size).toBe(reference(name).peft_all_linear_targets.length);
    } finally {
      model.dispose();
    }
  });
});

function hasFolder(name: string): boolean {
  try {
    readFileSync(join(DIR, name, 'config.json'));
    return true;
  } catch {
    try {
      readFileSync(join(DIR, name, 'adapter_config.json'));
      return true;
    } catch {
      return false;
    }
  }
}
