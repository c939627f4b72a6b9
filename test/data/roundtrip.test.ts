import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { readAllRecords, writeRows } from '../../src/data/records.js';
import { convertDataset } from '../../src/data/convert.js';
import { rowsToTable } from '../../src/data/arrow.js';
import { UserError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-roundtrip-'));

/** Nested messages, a Unicode string, an optional number present in one row only. */
const ROWS = [
  {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Grüße 👋\ttab\nnewline' },
      { role: 'assistant', content: 'Hi!' },
    ],
    margin: 2.5,
  },
  { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], margin: null },
];

async function values(file: string): Promise<unknown[]> {
  const { rows, errors } = await readAllRecords(file);
  expect(errors).toEqual([]);
  return rows.map((r) => r.value);
}

test.each(['rows.jsonl', 'rows.arrow', 'rows.arrows', 'rows.parquet'])('%s round trip keeps nested messages', async (name) => {
  const file = join(dir, name);
  expect(await writeRows(file, ROWS)).toBe(2);
  expect(await values(file)).toEqual(ROWS);
});

test('.arrow is the IPC file format and .arrows the stream format', async () => {
  await writeRows(join(dir, 'f.arrow'), ROWS);
  await writeRows(join(dir, 'f.arrows'), ROWS);
  expect(readFileSync(join(dir, 'f.arrow')).subarray(0, 6).toString()).toBe('ARROW1');
  expect(readFileSync(join(dir, 'f.arrows')).subarray(0, 6).toString()).not.toBe('ARROW1');
});

test('nested column types are inferred as List<Struct<role, content>>', () => {
  const table = rowsToTable(ROWS);
  expect(table.schema.fields.map((f) => `${f.name}: ${String(f.type)}`)).toEqual([
    'messages: List<Struct<{role:Utf8, content:Utf8}>>',
    'margin: Float64',
  ]);
});

test('a column mixing strings and message lists cannot become Arrow: the error names column and row', () => {
  const rows = [{ chosen: 'a' }, { chosen: [{ role: 'assistant', content: 'b' }] }];
  expect(() => rowsToTable(rows, 'out.arrow')).toThrow(UserError);
  expect(() => rowsToTable(rows, 'out.arrow')).toThrow('out.arrow: column "chosen" at row 2: holds a list where earlier rows hold a string');
});

test('convert JSONL -> Parquet -> Arrow -> JSONL gives back the rows', async () => {
  const src = join(dir, 'src.jsonl');
  writeFileSync(src, ROWS.map((r) => JSON.stringify(r)).join('\r\n') + '\r\n');
  await convertDataset(src, join(dir, 'c.parquet'));
  await convertDataset(join(dir, 'c.parquet'), join(dir, 'c.arrow'));
  await convertDataset(join(dir, 'c.arrow'), join(dir, 'back.jsonl'));
  expect(await values(join(dir, 'back.jsonl'))).toEqual(ROWS);
  expect(tableFromIPC(readFileSync(join(dir, 'c.arrow'))).numRows).toBe(2);
});

test('convert with --kind keeps extra columns and applies the bad-row policy', async () => {
  const src = join(dir, 'pref.jsonl');
  writeFileSync(src, [
    JSON.stringify({ id: 7, prompt: 'p', chosen: 'good', rejected: 'bad', strength: 'better' }),
    JSON.stringify({ id: 8, prompt: 'p', chosen: 'good', rejected: 'bad', strength: 'much_better' }),
  ].join('\n'));
  await expect(convertDataset(src, join(dir, 'pref.arrow'), { kind: 'preference' })).rejects.toThrow(/line 2: strength: unknown strength "much_better"/);
  const warnings: string[] = [];
  expect(await convertDataset(src, join(dir, 'pref.arrow'), { kind: 'preference', onBadRow: 'skip', warn: (m) => warnings.push(m) })).toBe(1);
  expect(warnings[0]).toContain('skipped 1 bad row(s) of 2');
  expect(await values(join(dir, 'pref.arrow'))).toEqual([{ id: 7, prompt: 'p', chosen: 'good', rejected: 'bad', strength: 'better' }]);
});

test('convert refuses unreadable rows instead of dropping them', async () => {
  const src = join(dir, 'broken.jsonl');
  writeFileSync(src, '{"text": "ok"}\n[1, 2]\n{oops\n');
  await expect(convertDataset(src, join(dir, 'broken.arrow'))).rejects.toThrow(/2 unreadable row\(s\)[\s\S]*line 2[\s\S]*line 3: invalid JSON/);
});

test('unknown extensions and missing files are user errors naming the path', async () => {
  await expect(convertDataset(join(dir, 'x.csv'), join(dir, 'y.jsonl'))).rejects.toThrow(/x\.csv: unknown dataset extension "\.csv"/);
  await expect(convertDataset(join(dir, 'missing.jsonl'), join(dir, 'y.jsonl'))).rejects.toThrow(/missing\.jsonl: dataset file not found/);
});

test.each(['nulls.arrow', 'nulls.parquet'])('%s keeps nulls at every nesting level', async (name) => {
  const rows = [
    { messages: null, text: 'plain', meta: { source: 'a', score: 1 } },
    { messages: [{ role: 'user', content: null }, null], text: null, meta: null },
    { messages: [], text: '', meta: { source: null, score: 2 } },
  ];
  const file = join(dir, name);
  await writeRows(file, rows);
  expect(await values(file)).toEqual(rows);
});
