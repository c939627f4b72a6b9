import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { IGNORE_INDEX, collateTrain, type Example, type TokenBatch } from '../../src/data/collate.js';
import { bestFitDecreasing, collatePacked, packExamples } from '../../src/data/packing.js';
import { additiveMask, segmentAttentionMask } from '../../src/data/mask.js';
import { llamaConfig } from '../../src/model/config.js';
import { initLlama, type LlamaModel } from '../../src/model/llama.js';
import { batchLossSum } from '../../src/training/sft-loss.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

test('best-fit-decreasing puts each item, longest first, into the fullest bin that fits', () => {
  // 7 -> new bin0 (room 3); 6 -> new bin1 (4); 5 -> new bin2 (5); 4 -> bin1 (0); 3 -> bin0 (0); 2 -> bin2 (3)
  expect(bestFitDecreasing([5, 3, 7, 2, 4, 6], 10)).toEqual([[2, 1], [5, 4], [0, 3]]);
  expect(bestFitDecreasing([], 4)).toEqual([]);
  expect(() => bestFitDecreasing([5], 4)).toThrow(/length 5 > capacity 4/);
});

test('packed rows: positions restart, segments count from 1, each segment\'s first label is -100', () => {
  const rows = packExamples([{ inputIds: [1, 2, 3], labels: [1, 2, 3] }, { inputIds: [4, 5], labels: [-100, 5] }, { inputIds: [6, 7, 8, 9], labels: [6, 7, 8, 9] }], { maxLength: 6 });
  expect(rows).toEqual([
    { inputIds: [6, 7, 8, 9, 4, 5], labels: [-100, 7, 8, 9, -100, 5], positionIds: [0, 1, 2, 3, 0, 1], segmentIds: [1, 1, 1, 1, 2, 2], examples: [2, 1] },
    { inputIds: [1, 2, 3], labels: [-100, 2, 3], positionIds: [0, 1, 2], segmentIds: [1, 1, 1], examples: [0] },
  ]);
  const batch = collatePacked(rows, { padId: 0 });
  expect(batch.positionIds[1]).toEqual([0, 1, 2, 0, 0, 0]);
  expect(batch.segmentIds[1]).toEqual([1, 1, 1, 0, 0, 0]);
  expect(batch.labels[1]).toEqual([-100, 2, 3, -100, -100, -100]);
  expect(batch.attentionMask[0]).toEqual([1, 1, 1, 1, 1, 1]);
});

test('segment ids -> block-diagonal causal mask [B, 1, T, T]; padding sees only padding', () => {
  const before = tf.memory().numTensors;
  const seg = tf.tensor2d([[1, 1, 2, 2, 0]], [1, 5], 'int32');
  const mask = segmentAttentionMask(seg);
  expect(mask.shape).toEqual([1, 1, 5, 5]);
  expect(mask.dtype).toBe('bool');
  expect(mask.arraySync()).toEqual([[[
    [1, 0, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [0, 0, 1, 0, 0],
    [0, 0, 1, 1, 0],
    [0, 0, 0, 0, 1],
  ]]]);
  const add = additiveMask(mask, -1e9);
  expect(add.dtype).toBe('float32');
  expect((add.arraySync() as number[][][][])[0]![0]![2]).toEqual([-1e9, -1e9, 0, -1e9, -1e9]);
  tf.dispose([seg, mask, add]);
  expect(tf.memory().numTensors).toBe(before);
});

// --- packing on the real model: LlamaModel with segment ids (block-diagonal causal mask) and RoPE
// positions restarting per example gives every packed example its unpacked loss ---

const V = 13; // vocab

const tinyLlama = (): LlamaModel =>
  initLlama(
    llamaConfig({
      vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      max_position_embeddings: 32, initializer_range: 0.5, pad_token_id: 0,
    }),
    new Rng(11),
  );

/** Log-probabilities [B, T, V] of the model over a collated batch (segment ids fed unless `segments` is false). */
function logProbs(model: LlamaModel, batch: TokenBatch, segments = true): number[][][] {
  const shape: [number, number] = [batch.inputIds.length, batch.inputIds[0]!.length];
  const out = tf.tidy(() => {
    const logits = model.forward({
      inputIds: tf.tensor2d(batch.inputIds, shape, 'int32'),
      attentionMask: tf.tensor2d(batch.attentionMask, shape, 'int32'),
      positionIds: tf.tensor2d(batch.positionIds, shape, 'int32'),
      ...(segments ? { segmentIds: tf.tensor2d(batch.segmentIds, shape, 'int32') } : {}),
    }).logits;
    return tf.logSoftmax(logits);
  });
  const values = out.arraySync() as number[][][];
  out.dispose();
  return values;
}

/** Sum and count of next-token NLL per segment (`row/segment`): logits at t predict labels[t + 1] (HF's shift). */
function segmentNll(logp: number[][][], batch: TokenBatch): Map<string, { nll: number; n: number }> {
  const sums = new Map<string, { nll: number; n: number }>();
  batch.labels.forEach((labels, b) => {
    for (let t = 0; t + 1 < labels.length; t++) {
      const label = labels[t + 1]!;
      if (label === IGNORE_INDEX) continue;
      const key = `${b}/${batch.segmentIds[b]![t + 1]}`;
      const s = sums.get(key) ?? { nll: 0, n: 0 };
      s.nll -= logp[b]![t]![label]!;
      s.n++;
      sums.set(key, s);
    }
  });
  return sums;
}

const meanLoss = (m: Map<string, { nll: number; n: number }>) => new Map([...m].map(([k, s]) => [k, s.nll / s.n]));

function randomExamples(rng: Rng, count: number): Example[] {
  return Array.from({ length: count }, () => {
    const len = 2 + rng.int(8);
    const ids = Array.from({ length: len }, () => 1 + rng.int(V - 1));
    const promptLen = rng.int(len - 1); // tokens before it carry no loss, as with a chat prompt
    return { inputIds: ids, labels: ids.map((id, i) => (i < promptLen ? IGNORE_INDEX : id)) };
  });
}

test('LlamaModel: a packed batch gives every example its unpacked loss (within 1e-5), also through the SFT loss', () => {
  const model = tinyLlama();
  const examples = randomExamples(new Rng(42), 9);
  const before = tf.memory().numTensors;

  const unpacked = collateTrain(examples, { padId: 0 });
  const unpackedLoss = meanLoss(segmentNll(logProbs(model, unpacked), unpacked));

  const rows = packExamples(examples, { maxLength: 12 });
  expect(rows.length).toBeLessThan(examples.length);
  expect(Math.max(...rows.map((r) => r.examples.length))).toBeGreaterThan(1);
  const packed = collatePacked(rows, { padId: 0 });
  const packedLoss = meanLoss(segmentNll(logProbs(model, packed), packed));

  let compared = 0;
  rows.forEach((row, b) =>
    row.examples.forEach((exampleIndex, k) => {
      const want = unpackedLoss.get(`${exampleIndex}/1`);
      const got = packedLoss.get(`${b}/${k + 1}`);
      expect(got === undefined).toBe(want === undefined);
      if (want === undefined) return;
      expect(Math.abs(got! - want)).toBeLessThan(1e-5);
      compared++;
    }),
  );
  expect(compared).toBeGreaterThanOrEqual(7);

  // The SFT objective (what sft and rs train on) feeds the segment ids: packed token sum = unpacked.
  const sum = (batch: TokenBatch) => {
    const s = tf.tidy(() => batchLossSum(model, batch, false));
    const v = s.dataSync()[0]!;
    s.dispose();
    return v;
  };
  const unpackedSum = sum(unpacked);
  expect(Math.abs(sum(packed) - unpackedSum)).toBeLessThan(1e-5 * Math.max(1, Math.abs(unpackedSum)));
  expect(tf.memory().numTensors).toBe(before);
  model.dispose();
});

test('without segment ids the packed losses differ (the test above can fail)', () => {
  const model = tinyLlama();
  const examples: Example[] = [{ inputIds: [3, 4, 5, 6], labels: [3, 4, 5, 6] }, { inputIds: [7, 8, 9], labels: [7, 8, 9] }];
  const rows = packExamples(examples, { maxLength: 8 });
  const packed = collatePacked(rows, { padId: 0 });
  expect(packed.segmentIds).toEqual([[1, 1, 1, 1, 2, 2, 2]]);
  const good = meanLoss(segmentNll(logProbs(model, packed), packed)).get('0/2')!;
  const alone = collateTrain([examples[1]!], { padId: 0 });
  expect(Math.abs(good - meanLoss(segmentNll(logProbs(model, alone), alone)).get('0/1')!)).toBeLessThan(1e-5);
  // segment 2 attending to segment 1 (what LlamaModel did before it read segment ids)
  const leaky = meanLoss(segmentNll(logProbs(model, packed, false), packed)).get('0/2')!;
  expect(Math.abs(good - leaky)).toBeGreaterThan(1e-3);
  // (RoPE scores depend on relative positions only, so inside an isolated segment restarting the
  // positions changes nothing but rounding; the packer restarts them as HF's packed position_ids do.)
  model.dispose();
});

test('segment ids are refused with a KV cache', () => {
  const model = tinyLlama();
  const ids = tf.tensor2d([[1, 2]], [1, 2], 'int32');
  const seg = tf.tensor2d([[1, 2]], [1, 2], 'int32');
  expect(() => model.forward({ inputIds: ids, segmentIds: seg, cache: { length: 0, layers: [] } as never })).toThrow(/KV cache/);
  tf.dispose([ids, seg]);
  model.dispose();
});
