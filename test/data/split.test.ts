import { trainEvalSplit } from '../../src/data/split.js';
import { DataCursor } from '../../src/data/cursor.js';

const items = Array.from({ length: 20 }, (_, i) => i);

test('seeded train/eval split: same seed, same split; parts partition the items in order', () => {
  const a = trainEvalSplit(items, { seed: 3, evalFraction: 0.25 });
  expect(a.eval).toHaveLength(5);
  expect(a.train).toHaveLength(15);
  expect([...a.train, ...a.eval].sort((x, y) => x - y)).toEqual(items);
  expect(a.eval).toEqual([...a.eval].sort((x, y) => x - y));
  expect(trainEvalSplit(items, { seed: 3, evalFraction: 0.25 })).toEqual(a);
  expect(trainEvalSplit(items, { seed: 4, evalFraction: 0.25 }).eval).not.toEqual(a.eval);
  expect(trainEvalSplit(items, { seed: 3, evalSize: 0 })).toEqual({ train: items, eval: [] });
  expect(() => trainEvalSplit(items, { seed: 3, evalSize: 21 })).toThrow(/eval size 21 is not in \[0, 20\]/);
});

test('cursor: every epoch is a permutation, epochs differ, the last short batch is kept or dropped', () => {
  const c = new DataCursor({ size: 10, batchSize: 4, seed: 1 });
  const epoch0 = [c.next(), c.next(), c.next()];
  expect(epoch0.map((b) => b.indices.length)).toEqual([4, 4, 2]);
  expect(epoch0.every((b) => b.epoch === 0)).toBe(true);
  const seen0 = epoch0.flatMap((b) => b.indices);
  expect([...seen0].sort((x, y) => x - y)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  const next = c.next();
  expect(next.epoch).toBe(1);
  expect(next.indices).not.toEqual(seen0.slice(0, 4));

  const d = new DataCursor({ size: 10, batchSize: 4, seed: 1, dropLast: true });
  expect([d.next().epoch, d.next().epoch, d.next().epoch]).toEqual([0, 0, 1]);
  expect(d.batchesPerEpoch).toBe(2);
  expect(new DataCursor({ size: 3, batchSize: 2, seed: 0, shuffle: false }).next().indices).toEqual([0, 1]);
});

test('a cursor resumed from its saved state hands out the same batches as an uninterrupted one', () => {
  const straight = new DataCursor({ size: 7, batchSize: 3, seed: 9 });
  const all = Array.from({ length: 8 }, () => straight.next());

  const first = new DataCursor({ size: 7, batchSize: 3, seed: 9 });
  const head = Array.from({ length: 4 }, () => first.next());
  const saved = JSON.parse(JSON.stringify(first.state)) as { epoch: number; index: number };
  expect(saved).toEqual({ epoch: 1, index: 3 });
  const resumed = new DataCursor({ size: 7, batchSize: 3, seed: 9, state: saved });
  const tail = Array.from({ length: 4 }, () => resumed.next());
  expect([...head, ...tail]).toEqual(all);
});
