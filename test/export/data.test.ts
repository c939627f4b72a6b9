import { LLAMA2_MARGINS, preferenceRows, rowLayout, seededHoldOut, sftRows } from '../../src/export/data.js';
import { trainEvalSplit } from '../../src/data/index.js';
import { MARGIN_TABLE } from '../../src/reward/loss.js';

const dialogue = [
  { role: 'user', content: 'Hi.' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Add 1 and 2.' },
  { role: 'assistant', content: '3.' },
];

test("the export's copy of Llama 2's margin table is the reward stage's", () => {
  expect(LLAMA2_MARGINS).toEqual(MARGIN_TABLE);
});

test('dialogues stay multi-turn; last-answer-only rows split into prompt (every earlier turn) + completion', () => {
  expect(sftRows([{ messages: dialogue, extra: 1 }], 'assistant', 'f')).toEqual([{ messages: dialogue }]);
  expect(sftRows([{ messages: dialogue }], 'last', 'f')).toEqual([{ prompt: dialogue.slice(0, 3), completion: [dialogue[3]] }]);
  expect(() => sftRows([{ messages: dialogue.slice(0, 3) }], 'last', 'f.jsonl')).toThrow('f.jsonl: row 1: messages');
  expect(() => rowLayout([{ messages: dialogue }, { text: 'x' }], 'f.jsonl')).toThrow('f.jsonl: rows mix layouts');
});

test('preference rows keep prompt/chosen/rejected and gain the margin the config asks for', () => {
  const row = { prompt: [dialogue[0]], chosen: [dialogue[1]], rejected: [{ role: 'assistant', content: 'No.' }], strength: 'better', chosen_score: 0.9 };
  expect(preferenceRows([row], 'none', 'f')).toEqual([{ prompt: row.prompt, chosen: row.chosen, rejected: row.rejected }]);
  expect(preferenceRows([row], 'large', 'f')[0]!.margin).toBe(2);
  expect(preferenceRows([{ ...row, margin: 0.25 }], 'column', 'f')[0]!.margin).toBe(0.25);
  expect(() => preferenceRows([{ ...row, strength: undefined }], 'small', 'p.jsonl')).toThrow('p.jsonl: row 1: reward.margin=small needs a strength column');
});

test("the SFT hold-out is the stage's own (trainEvalSplit with the same seed)", () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  expect(seededHoldOut(items, 7, 3)).toEqual(trainEvalSplit(items, { seed: 3, evalSize: 7 }));
});

test('data.on_bad_row: error names the file and row; skip drops the row with a warning, as the stages do', () => {
  const rows = [{ messages: dialogue }, { messages: 'not a list' }, { messages: dialogue }];
  expect(() => sftRows(rows, 'assistant', 'd.jsonl')).toThrow('d.jsonl: row 2: messages');
  const warnings: string[] = [];
  expect(sftRows(rows, 'assistant', 'd.jsonl', { onBad: 'skip', warn: (m) => void warnings.push(m) })).toHaveLength(2);
  expect(warnings).toEqual([expect.stringContaining('d.jsonl: row 2: messages')]);
  expect(warnings[0]).toContain('(skipped: data.on_bad_row is skip)');
});
