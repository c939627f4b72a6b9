import {
  collateGeneration,
  collatePreference,
  collateTrain,
  dropLongPairs,
  lastTokenIndices,
  truncateExample,
} from '../../src/data/collate.js';

const PAD = 0;
const ex = (ids: number[], labels?: number[]) => ({ inputIds: ids, labels: labels ?? ids });

test('right padding for training: pads get padId, label -100, mask 0, position 0, segment 0', () => {
  const batch = collateTrain([ex([5, 6, 7], [-100, 6, 7]), ex([8])], { padId: PAD });
  expect(batch).toEqual({
    inputIds: [[5, 6, 7], [8, PAD, PAD]],
    labels: [[-100, 6, 7], [8, -100, -100]],
    attentionMask: [[1, 1, 1], [1, 0, 0]],
    positionIds: [[0, 1, 2], [0, 0, 0]],
    segmentIds: [[1, 1, 1], [1, 0, 0]],
  });
});

test('padding keeps a trained EOS even when padId equals it', () => {
  const EOS = 2;
  const batch = collateTrain([ex([5, EOS]), ex([5, 6, EOS])], { padId: EOS });
  expect(batch.labels).toEqual([[5, EOS, -100], [5, 6, EOS]]);
  expect(batch.attentionMask).toEqual([[1, 1, 0], [1, 1, 1]]);
});

test('truncation keep_start / keep_end and padToMultipleOf', () => {
  expect(truncateExample(ex([1, 2, 3, 4, 5], [-100, -100, 3, 4, 5]), 3, 'keep_start')).toEqual(ex([1, 2, 3], [-100, -100, 3]));
  expect(truncateExample(ex([1, 2, 3, 4, 5], [-100, -100, 3, 4, 5]), 3, 'keep_end')).toEqual(ex([3, 4, 5], [3, 4, 5]));
  const batch = collateTrain([ex([1, 2, 3, 4, 5]), ex([9])], { padId: PAD, maxLength: 4, truncation: 'keep_end', padToMultipleOf: 3 });
  expect(batch.inputIds).toEqual([[2, 3, 4, 5, PAD, PAD], [9, PAD, PAD, PAD, PAD, PAD]]);
  expect(() => collateTrain([ex([1, 2], [1])], { padId: PAD })).toThrow(/inputIds \(2\) and labels \(1\) differ/);
});

test('left padding for generation: positions start at each prompt\'s first real token; long prompts keep their end', () => {
  const batch = collateGeneration([[5, 6, 7], [8], [1, 2, 3, 4, 5]], { padId: PAD, maxLength: 3 });
  expect(batch).toEqual({
    inputIds: [[5, 6, 7], [PAD, PAD, 8], [3, 4, 5]],
    attentionMask: [[1, 1, 1], [0, 0, 1], [1, 1, 1]],
    positionIds: [[0, 1, 2], [0, 0, 0], [0, 1, 2]],
    segmentIds: [[1, 1, 1], [0, 0, 1], [1, 1, 1]],
  });
});

test('preference pairs longer than max_length are dropped and counted; the rest pad to one length', () => {
  const pairs = [
    { chosen: ex([1, 2]), rejected: ex([1, 3, 4]), margin: 1 },
    { chosen: ex([1, 2, 3, 4, 5]), rejected: ex([1]) }, // chosen too long
    { chosen: ex([7]), rejected: ex([7, 8, 9, 9, 9]) }, // rejected too long
    { chosen: ex([6]), rejected: ex([6, 6]) },
  ];
  const { kept, dropped } = dropLongPairs(pairs, 4);
  expect(dropped).toBe(2);
  expect(kept).toEqual([pairs[0], pairs[3]]);
  const batch = collatePreference(kept, { padId: PAD });
  expect(batch.chosen.inputIds).toEqual([[1, 2, PAD], [6, PAD, PAD]]);
  expect(batch.rejected.inputIds).toEqual([[1, 3, 4], [6, 6, PAD]]);
  expect(batch.margins).toEqual([1, 0]);
  expect(lastTokenIndices(batch.chosen.attentionMask)).toEqual([1, 0]);
  expect(lastTokenIndices(batch.rejected.attentionMask)).toEqual([2, 1]);
});
