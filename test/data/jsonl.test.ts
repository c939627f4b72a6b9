import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonl } from '../../src/data/jsonl.js';
import { loadDataset, scanDataset } from '../../src/data/dataset.js';
import { formatProblem } from '../../src/data/problems.js';
import { UserError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-jsonl-'));

function dialogue(i: number): string {
  return JSON.stringify({ messages: [{ role: 'user', content: `question ${i}` }, { role: 'assistant', content: `answer ${i}` }] });
}

/** 1,000 rows; rows (= lines) 17, 503 and 998 are bad in three different ways. */
function writeThousandWithThreeBad(): string {
  const lines: string[] = [];
  for (let i = 1; i <= 1000; i++) lines.push(dialogue(i));
  lines[16] = '{"messages": [{"role": "user", "content": "broken"'; // line 17: not JSON
  lines[502] = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'bot', content: 'yo' }] }); // line 503
  lines[997] = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }); // line 998: no assistant turn
  const file = join(dir, 'thousand.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

test('reads CRLF line ends, blank lines and a trailing newline, numbering lines from 1', async () => {
  const file = join(dir, 'crlf.jsonl');
  writeFileSync(file, '\uFEFF{"a":1}\r\n\r\n{"a":2}\r\n{bad\r\n');
  const got = [];
  for await (const r of readJsonl(file)) got.push(r);
  expect(got).toEqual([
    { row: 1, value: { a: 1 } },
    { row: 3, value: { a: 2 } },
    { row: 4, error: expect.stringMatching(/^invalid JSON: /) },
  ]);
});

test('a JSONL file with 3 bad rows among 1,000 reports all 3 by line, field and reason', async () => {
  const file = writeThousandWithThreeBad();
  const scan = await scanDataset(file, 'sft');
  expect(scan.total).toBe(1000);
  expect(scan.rows).toHaveLength(997);
  expect(scan.problems.map((p) => [p.row, p.field])).toEqual([
    [17, ''],
    [503, 'messages[1].role'],
    [998, 'messages'],
  ]);
  expect(formatProblem(scan.problems[1]!)).toBe(
    `${file} line 503: messages[1].role: unknown role "bot" (expected system | user | assistant)`,
  );
  expect(formatProblem(scan.problems[2]!)).toBe(`${file} line 998: messages: must end on an assistant turn, ends on "user"`);
  expect(scan.problems[0]!.reason).toMatch(/^invalid JSON/);
});

test('on_bad_row=error throws a UserError naming every bad line', async () => {
  const file = writeThousandWithThreeBad();
  const err = await loadDataset(file, 'sft').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as UserError).message;
  expect(msg).toContain('3 bad row(s) of 1000');
  for (const line of [17, 503, 998]) expect(msg).toContain(`${file} line ${line}:`);
});

test('on_bad_row=skip drops the rows and reports the count and first reasons, never silently', async () => {
  const file = writeThousandWithThreeBad();
  const warnings: string[] = [];
  const rows = await loadDataset(file, 'sft', { onBadRow: 'skip', warn: (m) => warnings.push(m) });
  expect(rows).toHaveLength(997);
  expect(rows[0]).toEqual({ messages: [{ role: 'user', content: 'question 1' }, { role: 'assistant', content: 'answer 1' }] });
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('skipped 3 bad row(s) of 1000');
  expect(warnings[0]).toContain('line 503: messages[1].role');
});

test('a file with no usable rows is an error even when skipping', async () => {
  const file = join(dir, 'allbad.jsonl');
  writeFileSync(file, '{"text": ""}\n');
  await expect(loadDataset(file, 'sft', { onBadRow: 'skip', warn: () => {} })).rejects.toThrow(/no usable sft rows/);
});
