import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { formatReport, lengthStats, validateDataset } from '../../src/data/validate.js';
import { writeRows } from '../../src/data/records.js';
import { dataCommand } from '../../src/cli/data.js';
import { UserError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-validate-'));
const words = (text: string) => text.split(/\s+/).filter(Boolean).map(() => 1);

test('length statistics use nearest-rank percentiles', () => {
  expect(lengthStats([4, 1, 3, 2])).toEqual({ count: 4, min: 1, mean: 2.5, p50: 2, p95: 4, max: 4 });
  expect(lengthStats(Array.from({ length: 100 }, (_, i) => i + 1))).toMatchObject({ p50: 50, p95: 95, max: 100 });
  expect(lengthStats([])).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p95: 0, max: 0 });
});

test('report: counts, forms, token lengths per column and every problem', async () => {
  const file = join(dir, 'pref.arrow');
  await writeRows(file, [
    { prompt: 'one two', chosen: 'a b c', rejected: 'd', strength: 'better' },
    { prompt: 'three', chosen: 'e', rejected: 'f g h i', strength: null },
    { prompt: 'x', chosen: 'y', rejected: 'z', strength: 'best' },
  ]);
  const report = await validateDataset(file, 'preference', { encode: words });
  expect(report).toMatchObject({ format: 'arrow', total: 3, valid: 2, forms: { standard: 2 } });
  expect(report.tokens).toEqual({
    prompt: { count: 2, min: 1, mean: 1.5, p50: 1, p95: 2, max: 2 },
    chosen: { count: 2, min: 1, mean: 2, p50: 1, p95: 3, max: 3 },
    rejected: { count: 2, min: 1, mean: 2.5, p50: 1, p95: 4, max: 4 },
    '(row total)': { count: 2, min: 6, mean: 6, p50: 6, p95: 6, max: 6 },
  });
  expect(report.problems.map((p) => `${p.unit} ${p.row} ${p.field}`)).toEqual(['row 3 strength']);
  const text = formatReport(report);
  expect(text).toContain('rows: 3 read, 2 valid, 1 bad');
  expect(text).toContain(`${file} row 3: strength: unknown strength "best"`);
});

async function runData(argv: string[]): Promise<{ out: string; error?: unknown }> {
  const logs: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void logs.push(a.join(' '));
  let error: unknown;
  try {
    await yargs(argv).command(dataCommand).strict().exitProcess(false).fail((msg, e) => { throw e ?? new Error(msg); }).parseAsync();
  } catch (e) {
    error = e;
  } finally {
    console.log = log;
  }
  return { out: logs.join('\n'), error };
}

test('rlhf data validate: clean file prints the report; a bad file ends in a UserError (exit 2)', async () => {
  const good = join(dir, 'sft.jsonl');
  writeFileSync(good, '{"messages":[{"role":"user","content":"hi there"},{"role":"assistant","content":"hello"}]}\n{"text":"plain text"}\n');
  const ok = await runData(['data', 'validate', good, '--kind', 'sft', '--tokenizer', 'test/fixtures/tokenizers/byte-level-bpe']);
  expect(ok.error).toBeUndefined();
  expect(ok.out).toContain('rows: 2 read, 2 valid, 0 bad');
  expect(ok.out).toContain('forms: messages=1, text=1');
  expect(ok.out).toMatch(/\(row total\)\s+\d/);
  expect(ok.out).toContain('no problems found');

  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"prompt":"p"}\n');
  const failed = await runData(['data', 'validate', bad, '--kind', 'prompts']);
  expect(failed.error).toBeUndefined();
  const failedSft = await runData(['data', 'validate', bad, '--kind', 'sft']);
  expect(failedSft.error).toBeInstanceOf(UserError);
  expect((failedSft.error as UserError).exitCode).toBe(2);
  expect(failedSft.out).toContain(`${bad} line 1: completion: missing (expected a string)`);
});

test('rlhf data convert writes the other format', async () => {
  const src = join(dir, 'conv.jsonl');
  writeFileSync(src, '{"prompt":"p","completion":"c"}\n');
  const res = await runData(['data', 'convert', src, join(dir, 'conv.parquet'), '--kind', 'sft']);
  expect(res.error).toBeUndefined();
  expect(res.out).toBe(`wrote 1 rows to ${join(dir, 'conv.parquet')}`);
});
