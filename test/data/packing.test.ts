import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { IGNORE_INDEX, collateTrain, type Example, type TokenBatch } from '../../src/data/collate.js';
import { bestFitDecreasing, collatePacked, packExamples } from '../../src/data/packing.js';
import { additiveMask, batchToTensors, segmentAttentionMask } from '../../src/data/mask.js';

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

// --- a tiny attention + MLP language model, enough to prove packing changes no example's loss ---

const V = 13; // vocab
const H = 8; // hidden
const F = 16; // MLP width
const P = 16; // max positions

function makeWeights(rng: Rng): Record<string, tf.Tensor2D> {
  const w = (r: number, c: number) => tf.tensor2d(rng.fillNormal(new Float32Array(r * c), 0.5), [r, c]);
  return { tok: w(V, H), pos: w(P, H), q: w(H, H), k: w(H, H), v: w(H, H), o: w(H, H), up: w(H, F), down: w(F, H), out: w(H, V) };
}

/** Log-probabilities [B, T, V] of a one-layer, one-head transformer over a collated batch. */
function logProbs(w: Record<string, tf.Tensor2D>, batch: TokenBatch): number[][][] {
  const t = batchToTensors(batch);
  const out = tf.tidy(() => {
    const [b, s] = t.inputIds.shape;
    const lin = (x: tf.Tensor3D, m: tf.Tensor2D) => tf.reshape(tf.matMul(tf.reshape(x, [b * s, -1]), m), [b, s, -1]) as tf.Tensor3D;
    let x = tf.add(tf.gather(w.tok!, t.inputIds), tf.gather(w.pos!, t.positionIds)) as tf.Tensor3D; // [B, T, H]
    const scores = tf.div(tf.matMul(lin(x, w.q!), lin(x, w.k!), false, true), Math.sqrt(H)); // [B, T, T]
    const mask = tf.squeeze(additiveMask(segmentAttentionMask(t.segmentIds)), [1]); // [B, T, T]
    const attn = tf.matMul(tf.softmax(tf.add(scores, mask)), lin(x, w.v!)) as tf.Tensor3D; // [B, T, H]
    x = tf.add(x, lin(attn, w.o!));
    x = tf.add(x, lin(tf.relu(lin(x, w.up!)), w.down!));
    return tf.logSoftmax(lin(x, w.out!)); // [B, T, V]
  });
  const values = out.arraySync() as number[][][];
  tf.dispose([out, ...Object.values(t)]);
  return values;
}

/** Mean next-token NLL of each segment: logits at t predict labels[t + 1] (HF's shift). */
function segmentLosses(logp: number[][][], batch: TokenBatch): Map<string, number> {
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
  return new Map([...sums].map(([k, s]) => [k, s.nll / s.n]));
}

test('a packed batch gives the same per-example loss as the unpacked one (within 1e-5)', () => {
  const rng = new Rng(42);
  const examples: Example[] = Array.from({ length: 9 }, () => {
    const len = 2 + rng.int(8);
    const ids = Array.from({ length: len }, () => 1 + rng.int(V - 1));
    const promptLen = rng.int(len - 1); // tokens before it carry no loss, as with a chat prompt
    return { inputIds: ids, labels: ids.map((id, i) => (i < promptLen ? IGNORE_INDEX : id)) };
  });
  const weights = makeWeights(rng);
  const before = tf.memory().numTensors;

  const unpacked = collateTrain(examples, { padId: 0 });
  const unpackedLoss = segmentLosses(logProbs(weights, unpacked), unpacked);

  const rows = packExamples(examples, { maxLength: 12 });
  expect(rows.length).toBeLessThan(examples.length);
  expect(Math.max(...rows.map((r) => r.examples.length))).toBeGreaterThan(1);
  const packed = collatePacked(rows, { padId: 0 });
  const packedLoss = segmentLosses(logProbs(weights, packed), packed);

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
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose(Object.values(weights));
});

test('without restarting positions the losses would differ (the test above can fail)', () => {
  const rng = new Rng(7);
  const weights = makeWeights(rng);
  const examples: Example[] = [{ inputIds: [3, 4, 5, 6], labels: [3, 4, 5, 6] }, { inputIds: [7, 8, 9], labels: [7, 8, 9] }];
  const rows = packExamples(examples, { maxLength: 8 });
  const packed = collatePacked(rows, { padId: 0 });
  expect(packed.segmentIds).toEqual([[1, 1, 1, 1, 2, 2, 2]]);
  const wrongPositions = { ...packed, positionIds: [[0, 1, 2, 3, 4, 5, 6]] }; // not restarted
  const good = segmentLosses(logProbs(weights, packed), packed);
  const bad = segmentLosses(logProbs(weights, wrongPositions), wrongPositions);
  expect(Math.abs(good.get('0/2')! - bad.get('0/2')!)).toBeGreaterThan(1e-3);
  // Nor without the block-diagonal mask (segment 2 attending to segment 1): labels keep the
  // segment split, segment ids for attention become one block.
  const oneBlock = { ...packed, segmentIds: [[1, 1, 1, 1, 1, 1, 1]] };
  const leaky = segmentLosses(logProbs(weights, oneBlock), { ...oneBlock, segmentIds: packed.segmentIds });
  expect(Math.abs(good.get('0/2')! - leaky.get('0/2')!)).toBeGreaterThan(1e-3);
  tf.dispose(Object.values(weights));
});
