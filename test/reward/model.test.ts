import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, saveAdapter } from '../../src/lora/index.js';
import { attachScoreHead, initLlama, llamaConfig, loadHfModel, saveHfModel, type LlamaModel } from '../../src/model/index.js';
import { loadRewardBackbone, pairRewards, readRewardStats, saveRewardModel, sequenceRewards } from '../../src/reward/model.js';
import { padSequences, pairBatch, disposePairBatch, type TokenizedPair } from '../../src/reward/pairs.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const CONFIG = llamaConfig({
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  pad_token_id: 0,
});

function tinyRewardModel(seed = 1): LlamaModel {
  const rng = new Rng(seed);
  const model = initLlama(CONFIG, rng);
  // A larger head than HF's 0.02 init so reward differences are well above float noise.
  attachScoreHead(model, rng, { dropLmHead: true });
  model.scoreHead!.weight.assign(tf.tidy(() => tf.mul(model.scoreHead!.weight, 50)));
  return model;
}

function rewardsOf(model: LlamaModel, seqs: number[][], side: 'left' | 'right', padId = 0): number[] {
  const { ids, mask } = padSequences(seqs, { padId, side });
  return tf.tidy(() => Array.from(sequenceRewards(model, tf.tensor2d(ids, undefined, 'int32'), tf.tensor2d(mask, undefined, 'int32')).dataSync()));
}

const PAIR: TokenizedPair = { chosen: [1, 5, 9, 12, 7, 2], rejected: [1, 5, 9, 30, 31, 32, 33, 2, 2], margin: 1, row: 1 };

describe('reward read at the last non-pad token', () => {
  test('the same pair gives the same rewards left-padded and right-padded (1e-5)', () => {
    const model = tinyRewardModel();
    const seqs = [PAIR.chosen, PAIR.rejected, [1, 3], [1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2]];
    const right = rewardsOf(model, seqs, 'right');
    const left = rewardsOf(model, seqs, 'left');
    for (let i = 0; i < seqs.length; i++) expect(Math.abs(right[i]! - left[i]!)).toBeLessThan(1e-5);
    // ... and as each sequence alone, unpadded.
    seqs.forEach((s, i) => expect(rewardsOf(model, [s], 'right')[0]).toBeCloseTo(right[i]!, 5));
    // Sanity: the rewards differ from each other (the test would pass trivially on a constant).
    expect(new Set(right.map((r) => r.toFixed(3))).size).toBe(seqs.length);
    model.dispose();
  });

  test('a pad id equal to a real token id (EOS) does not move the read position', () => {
    const model = tinyRewardModel();
    // Rejected ends in two EOS (2), and we pad with 2 as well: only the mask says where it ends.
    const withEosPad = rewardsOf(model, [PAIR.rejected], 'right', 2);
    const alone = rewardsOf(model, [PAIR.rejected], 'left', 0);
    const padded = rewardsOf(model, [PAIR.rejected, [...PAIR.rejected, 3, 3, 3]], 'right', 2);
    expect(withEosPad[0]).toBeCloseTo(alone[0]!, 5);
    expect(padded[0]).toBeCloseTo(alone[0]!, 5);
    model.dispose();
  });

  test('pairRewards: chosen and rejected in one [2B, T] batch equal separate scoring, either padding side', () => {
    const model = tinyRewardModel();
    const pairs: TokenizedPair[] = [PAIR, { chosen: [1, 2], rejected: [1, 8, 8, 2], margin: 0, row: 2 }];
    const separate = rewardsOf(model, [...pairs.map((p) => p.chosen), ...pairs.map((p) => p.rejected)], 'right');
    for (const side of ['left', 'right'] as const) {
      const batch = pairBatch(pairs, { padId: 0, side, padToMultipleOf: 8 });
      expect(batch.chosenIds.shape).toEqual([2, 16]);
      const out = pairRewards(model, batch);
      const c = Array.from(out.chosen.dataSync());
      const r = Array.from(out.rejected.dataSync());
      expect(c[0]).toBeCloseTo(separate[0]!, 5);
      expect(c[1]).toBeCloseTo(separate[1]!, 5);
      expect(r[0]).toBeCloseTo(separate[2]!, 5);
      expect(r[1]).toBeCloseTo(separate[3]!, 5);
      tf.dispose([out.chosen, out.rejected]);
      disposePairBatch(batch);
    }
    model.dispose();
  });

  test('no tensor leaks from scoring', () => {
    const model = tinyRewardModel();
    const before = tf.memory().numTensors;
    rewardsOf(model, [PAIR.chosen, PAIR.rejected], 'left');
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('reward model folders', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'reward-model-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('loadRewardBackbone from a causal LM: fresh head, LM head dropped, adapter merged', () => {
    const base = initLlama({ ...CONFIG, pad_token_id: null }, new Rng(3));
    saveHfModel(base, join(dir, 'base'));
    writeFileSync(join(dir, 'base', 'tokenizer.json'), '{"fake": true}');
    // An SFT LoRA adapter with non-zero B, so merging changes the weights.
    injectLora(base, { targetModules: ['q_proj', 'v_proj'], r: 2, alpha: 4, rng: new Rng(4) });
    for (const a of base.adapters.values()) (a as unknown as { B: tf.Variable }).B.assign(tf.fill((a as unknown as { B: tf.Variable }).B.shape, 0.1));
    saveAdapter(base, join(dir, 'adapter'));
    const q0 = 'model.layers.0.self_attn.q_proj.weight';
    const baseQ = Array.from(base.param(q0).dataSync());

    const model = loadRewardBackbone(join(dir, 'base'), new Rng(5), { adapterDir: join(dir, 'adapter') });
    expect(model.scoreHead!.weight.shape).toEqual([1, 16]);
    expect(model.params.has('lm_head.weight')).toBe(false);
    expect(model.adapters.size).toBe(0);
    expect(Math.abs(model.param(q0).dataSync()[0]! - baseQ[0]!)).toBeGreaterThan(1e-4);

    const before = rewardsOf(model, [PAIR.chosen, PAIR.rejected], 'right');
    saveRewardModel(model, join(dir, 'rm'), { stats: { mean: 0.5, std: 2, count: 4 }, tokenizerDir: join(dir, 'base'), padId: 0 });
    const cfg = JSON.parse(readFileSync(join(dir, 'rm', 'config.json'), 'utf8'));
    expect(cfg.architectures).toEqual(['LlamaForSequenceClassification']);
    expect(cfg.num_labels).toBe(1);
    expect(cfg.id2label).toEqual({ '0': 'LABEL_0' });
    expect(cfg.pad_token_id).toBe(0);
    expect(readFileSync(join(dir, 'rm', 'tokenizer.json'), 'utf8')).toBe('{"fake": true}');
    expect(readRewardStats(join(dir, 'rm'))).toEqual({ mean: 0.5, std: 2, count: 4 });

    const reloaded = loadHfModel(join(dir, 'rm'));
    expect([...reloaded.params.keys()]).toContain('score.weight');
    expect(reloaded.params.has('lm_head.weight')).toBe(false);
    const after = rewardsOf(reloaded, [PAIR.chosen, PAIR.rejected], 'right');
    expect(after[0]).toBeCloseTo(before[0]!, 6);
    expect(after[1]).toBeCloseTo(before[1]!, 6);
    // A reward model loaded as a backbone keeps its trained head.
    const again = loadRewardBackbone(join(dir, 'rm'), new Rng(99));
    expect(Array.from(again.scoreHead!.weight.dataSync())).toEqual(Array.from(reloaded.scoreHead!.weight.dataSync()));
    [base, model, reloaded, again].forEach((m) => m.dispose());
  });
});
