import { IGNORE_INDEX } from '../../src/data/index.js';
import { buildUnits, collateUnits, keepTrainable, pickTemplate } from '../../src/sft/data.js';
import type { Tokenizer } from '../../src/tokenizer/index.js';

const X = IGNORE_INDEX;

test('keepTrainable drops examples whose trained tokens all fall outside max_length (or only at position 0)', () => {
  const examples = [
    { inputIds: [1, 2, 3, 4], labels: [X, X, 3, 4] }, // trained tokens at 2, 3
    { inputIds: [1, 2, 3, 4], labels: [1, X, X, X] }, // only position 0: never predicted
    { inputIds: [1, 2, 3, 4, 5], labels: [X, X, X, X, 5] }, // cut away with keep_start, kept with keep_end
  ];
  expect(keepTrainable(examples, 3, 'keep_start')).toEqual({ kept: [examples[0]], dropped: 2 });
  expect(keepTrainable(examples, 3, 'keep_end').kept).toEqual([examples[0], examples[2]]);
});

test('units: plain examples pad to a multiple of 8; packed rows restart positions and mask each first token', () => {
  const examples = [
    { inputIds: [5, 6, 7], labels: [X, 6, 7] },
    { inputIds: [8, 9], labels: [X, 9] },
  ];
  const plain = collateUnits(buildUnits(examples, { packing: false, maxLength: 16, truncation: 'keep_start' }), [1, 0], {
    padId: 0, maxLength: 16, truncation: 'keep_start',
  });
  expect(plain.inputIds).toEqual([[8, 9, 0, 0, 0, 0, 0, 0], [5, 6, 7, 0, 0, 0, 0, 0]]);
  expect(plain.labels[0]).toEqual([X, 9, X, X, X, X, X, X]);
  const packedUnits = buildUnits(examples, { packing: true, maxLength: 8, truncation: 'keep_start' });
  expect(packedUnits.items).toHaveLength(1);
  const packed = collateUnits(packedUnits, [0], { padId: 0, maxLength: 8, truncation: 'keep_start' });
  expect(packed.inputIds).toEqual([[5, 6, 7, 8, 9]]);
  expect(packed.labels).toEqual([[X, 6, 7, X, 9]]);
  expect(packed.positionIds).toEqual([[0, 1, 2, 0, 1]]);
});

test("template auto: the tokenizer's own when it has one, else llama2", () => {
  const tok = (chatTemplate?: string) => ({ chatTemplate }) as unknown as Tokenizer;
  expect(pickTemplate('auto', tok('{{ x }}'))).toBe('tokenizer');
  expect(pickTemplate('auto', tok())).toBe('llama2');
  expect(pickTemplate('chatml', tok('{{ x }}'))).toBe('chatml');
});
