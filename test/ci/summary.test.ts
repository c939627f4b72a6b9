/**
 * The summary step of .ci/run (the Node program between `<<'NODE'` and `NODE`), on a hand-written
 * jest report: the ten slowest files, and a failed typecheck or lint counted as a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packagePath } from '../../src/paths.js';

let dir: string;
let program: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ci-summary-'));
  const ci = readFileSync(packagePath('.ci', 'run'), 'utf8');
  const body = /<<'NODE'\n([\s\S]*?)\nNODE\n/.exec(ci);
  if (!body) throw new Error(".ci/run: no <<'NODE' … NODE block");
  program = join(dir, 'summary.cjs');
  writeFileSync(program, body[1]!);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A jest --json report of `files` test files (file i took i + 1 seconds), all 3 tests of each passing. */
function report(files: number): string {
  const path = join(dir, `report-${files}.json`);
  const testResults = Array.from({ length: files }, (_, i) => ({
    name: join(process.cwd(), 'test', `f${i}.test.ts`),
    status: 'passed',
    startTime: 1000,
    endTime: 1000 + 1000 * (i + 1),
    assertionResults: [{ status: 'passed' }, { status: 'passed' }, { status: 'passed' }],
  }));
  writeFileSync(path, JSON.stringify({ numPassedTests: 3 * files, numFailedTests: 0, numFailedTestSuites: 0, testResults }));
  return path;
}

function summary(reportFile: string, jestStatus: number, checksFailed: number): { code: number; lines: string[] } {
  const r = spawnSync(process.execPath, [program, reportFile, String(jestStatus), String(checksFailed)], { encoding: 'utf8' });
  return { code: r.status ?? -1, lines: r.stdout.trim().split('\n') };
}

test('the ten slowest test files, slowest first, then the count line', () => {
  const r = summary(report(12), 0, 0);
  expect(r.code).toBe(0);
  expect(r.lines[0]).toBe('slowest test files:');
  expect(r.lines.slice(1, 11)).toEqual(Array.from({ length: 10 }, (_, i) => `  ${(12 - i).toFixed(1).padStart(7)} s  test/f${11 - i}.test.ts`));
  expect(r.lines.at(-1)).toBe('36 passed, 0 failed');
  expect(r.lines).toHaveLength(12);
});

test('a failed typecheck and a failed lint are two failures, and CI fails', () => {
  const r = summary(report(2), 0, 2);
  expect(r.code).toBe(1);
  expect(r.lines.at(-1)).toBe('6 passed, 2 failed');
});
