/**
 * rlhf-kit's wasm kernel patches, against the cpu backend (values and gradients, 1e-5 normwise
 * relative) and against hand-computed numbers where cpu itself is wrong or too slow.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/index.js';
import { broadcastBatchIndex } from '../../src/engine/wasm/batch_mat_mul.js';
import { segmentSum } from '../../src/engine/wasm/unsorted_segment_sum.js';
import { expectSameOutputs, onBoth, randomValues, relativeError, runOn } from '../helpers/engine.js';

describe('segmentSum (pure)', () => {
  it('sums rows by id and drops out-of-range ids', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // 5 rows of 2
    const out = new Float32Array(6);
    segmentSum(x, Int32Array.from([2, 0, 2, -1, 3]), 3, out);
    expect(Array.from(out)).toEqual([3, 4, 0, 0, 6, 8]); // row 4 (id 3 ≥ 3) dropped too
  });
});

describe('broadcastBatchIndex (pure)', () => {
  it('maps output batch entries to operand entries under broadcasting', () => {
    // out batch [2,3]; operand [2,1] repeats along the last axis, [3] along the first.
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastBatchIndex([2, 3], [2, 1], i))).toEqual([0, 0, 0, 1, 1, 1]);
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastBatchIndex([2, 3], [3], i))).toEqual([0, 1, 2, 0, 1, 2]);
    expect([0, 1, 2, 3, 4, 5].map((i) => broadcastBatchIndex([2, 3], [], i))).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('UnsortedSegmentSum on wasm', () => {
  it('matches cpu for float32 and int32, values and gradient', async () => {
    const ids = [4, 0, 4, 1, -1, 0, 2, 4];
    const [cpu, wasm] = await onBoth(() => {
      const x = tf.tensor(randomValues(3, [8, 5]), [8, 5]);
      const seg = tf.tensor1d(ids, 'int32');
      const w = tf.tensor(randomValues(4, [6, 5]), [6, 5]);
      const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(v, seg, 6), w)))(x);
      const ints = tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 2);
      return [tf.unsortedSegmentSum(x, seg, 6), grad, ints];
    });
    expectSameOutputs(cpu, wasm, 1e-5);
    expect(Array.from(wasm[2]!)).toEqual([5, 6, 4, 6]);
  });

  it('takes multi-dimensional segment ids (TensorFlow semantics)', async () => {
    const [out] = await runOn('wasm', () =>
      tf.unsortedSegmentSum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]), tf.tensor2d([[0, 1], [1, 0]], [2, 2], 'int32') as unknown as tf.Tensor1D, 2));
    expect(Array.from(out!)).toEqual([1 + 7, 2 + 8, 3 + 5, 4 + 6]);
  });

  it('gives gather (an embedding lookup) its gradient', async () => {
    const [cpu, wasm] = await onBoth(() => {
      const table = tf.tensor(randomValues(5, [50, 8]), [50, 8]);
      const tokens = tf.tensor2d([[3, 7, 3, 49], [0, 7, 7, 1]], [2, 4], 'int32');
      return tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tokens))))(table);
    });
    expectSameOutputs(cpu, wasm, 1e-5);
  });
});

describe('BatchMatMul on wasm', () => {
  // [a shape, b shape] before transpose flags are applied to the last two axes.
  const SHAPES: [string, number[], number[]][] = [
    ['2-D', [7, 5], [5, 9]],
    ['batched, tiny per entry', [3, 7, 5], [3, 5, 9]],
    ['batched, XNNPACK per entry', [2, 40, 30], [2, 30, 50]],
    ['rank-3 x rank-2 (x·W)', [3, 20, 16], [16, 24]],
    ['rank-2 x rank-3', [20, 16], [3, 16, 24]],
    ['rank-4 heads', [2, 3, 17, 8], [2, 3, 8, 17]],
  ];
  const FLAGS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
  const cases = SHAPES.flatMap(([name, a, b]) => FLAGS.map(([tA, tB]) => [name, tA, tB, a, b] as const));

  it.each(cases)('%s, transposeA=%s transposeB=%s: values and gradients match cpu', async (_n, tA, tB, a, b) => {
    const swap = (s: number[], t: boolean): number[] => (t ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s);
    const aShape = swap(a, tA);
    const bShape = swap(b, tB);
    const [cpu, wasm] = await onBoth(() => {
      const x = tf.tensor(randomValues(7, aShape), aShape);
      const y = tf.tensor(randomValues(8, bShape), bShape);
      const out = tf.matMul(x, y, tA, tB);
      const w = tf.tensor(randomValues(9, out.shape), out.shape);
      const [dx, dy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q, tA, tB), w)))([x, y]);
      return [out, dx!, dy!];
    });
    expectSameOutputs(cpu, wasm, 1e-5);
  });

  it('broadcasts batch dims both ways ([2,1]·[1,3]), as an explicit tile does', async () => {
    // The cpu kernel gets this broadcast wrong (it assumes one side has batch 1), so the
    // reference is the same product with both operands tiled to the full batch.
    const aVals = randomValues(11, [2, 1, 5, 4]);
    const bVals = randomValues(12, [1, 3, 4, 6]);
    const [[out, da, db], [ref, refDa, refDb]] = await Promise.all([
      runOn('wasm', () => {
        const a = tf.tensor(aVals, [2, 1, 5, 4]);
        const b = tf.tensor(bVals, [1, 3, 4, 6]);
        const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p, q))))([a, b]);
        return [tf.matMul(a, b), ga!, gb!];
      }),
    ].concat([runOn('wasm', () => {
      const a = tf.tensor(aVals, [2, 1, 5, 4]);
      const b = tf.tensor(bVals, [1, 3, 4, 6]);
      const tiled = (p: tf.Tensor, q: tf.Tensor): tf.Tensor => tf.matMul(tf.tile(p, [1, 3, 1, 1]), tf.tile(q, [2, 1, 1, 1]));
      const [ga, gb] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tiled(p, q))))([a, b]);
      return [tiled(a, b), ga!, gb!];
    })])) as [Float32Array[], Float32Array[]];
    expect(out!.length).toBe(2 * 3 * 5 * 6);
    expect(relativeError(out!, ref!)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(da!, refDa!)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(db!, refDb!)).toBeLessThanOrEqual(1e-5);
  });

  it('pins a hand-computed transposed product', async () => {
    const [out] = await runOn('wasm', () =>
      tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]), true, true));
    // aᵀ = [[1,3],[2,4]], bᵀ = [[5,7],[6,8]]
    expect(Array.from(out!)).toEqual([1 * 5 + 3 * 6, 1 * 7 + 3 * 8, 2 * 5 + 4 * 6, 2 * 7 + 4 * 8]);
  });

  it('leaks no tensor and no wasm buffer', async () => {
    await initEngine({ backend: 'wasm' });
    const a = tf.tensor(randomValues(1, [2, 40, 30]), [2, 40, 30]);
    const b = tf.tensor(randomValues(2, [2, 50, 30]), [2, 50, 30]);
    const before = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.matMul(p, q, false, true)))([a, b]);
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    tf.dispose([a, b]);
  });
});

describe('StridedSlice on wasm', () => {
  it('keeps int32 and bool values on the strided path', async () => {
    const [ints, bools] = await runOn('wasm', () => {
      const x = tf.reshape(tf.range(0, 48, 1, 'int32'), [6, 8]);
      const s = tf.stridedSlice(x, [1, 0], [5, 8], [2, 3]);
      const b = tf.stridedSlice(tf.greater(x, 20), [1, 0], [5, 8], [2, 3]);
      expect([s.dtype, b.dtype]).toEqual(['int32', 'bool']);
      return [s, b];
    });
    expect(Array.from(ints!)).toEqual([8, 11, 14, 24, 27, 30]);
    expect(Array.from(bools!)).toEqual([0, 0, 0, 1, 1, 1]);
  });
});

describe('GatherV2 on wasm (row copies along axis 0)', () => {
  it('matches cpu: float32 and int32 tables, 1-D and 2-D indices, repeats, other axes, and the gradient', async () => {
    const [cpu, wasm] = await onBoth(() => {
      const table = tf.tensor(randomValues(11, [50, 3, 4]), [50, 3, 4]);
      const ids = tf.tensor1d([49, 0, 7, 7, 21], 'int32');
      const ids2d = tf.tensor2d([[1, 2], [48, 1]], [2, 2], 'int32');
      const ints = tf.reshape(tf.range(0, 60, 1, 'int32'), [20, 3]);
      const w = tf.tensor(randomValues(12, [5, 3, 4]), [5, 3, 4]);
      const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), w)))(table);
      return [
        tf.gather(table, ids), tf.gather(table, ids2d), tf.cast(tf.gather(ints, tf.tensor1d([19, 0, 4], 'int32')), 'float32'),
        tf.gather(table, tf.tensor1d([2, 0], 'int32'), 1), tf.gather(table, tf.tensor1d([], 'int32')), grad,
      ];
    });
    expectSameOutputs(cpu, wasm, 0);
  });
});
