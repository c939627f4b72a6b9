/** The rounds section of the report: judge per round and stage, staleness, best of K, from the files the rounds write. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pngInfo, writeRunReport } from '../../src/report/index.js';
import { readRunInputs } from '../../src/report/inputs.js';
import { judgeTrajectory, readRounds } from '../../src/report/rounds.js';
import { summarizeRun } from '../../src/report/summary.js';
import { terminalSummary } from '../../src/report/terminal.js';
import { writeFakeRun, writeJson } from './fake-run.js';

let dir: string;
const judge = (score: number) => ({ judge_score: score, by_family: {}, samples: [] });
const curve = (max: number[], median: number[]) => ({ prompts: 4, k: 4, temperature: 1, curve: [1, 2, 4].map((k, i) => ({ k, reward_max: max[i], reward_median: median[i] })), judge: null, unfinished: 0 });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-rounds-'));
  writeFakeRun(dir, { withGatt: true });
  writeJson(join(dir, 'eval', 'sft.json'), judge(0.5));
  writeJson(join(dir, 'eval', 'rs.json'), judge(0.6));
  writeJson(join(dir, 'eval', 'gatt.json'), judge(0.58));
  writeJson(join(dir, 'round_1', 'eval', 'rs.json'), judge(0.55));
  writeJson(join(dir, 'round_1', 'reward_accuracy.json'), { round: 1, pairs: 40, before: 0.6, after: 0.7 });
  writeJson(join(dir, 'round_1', 'rs', 'best_of_k.json'), curve([0.1, 0.5, 0.9], [0.1, 0.12, 0.15]));
  writeJson(join(dir, 'round_2', 'eval', 'rs.json'), judge(0.58));
  writeJson(join(dir, 'round_2', 'eval', 'ppo.json'), judge(0.6));
  writeJson(join(dir, 'round_2', 'reward_accuracy.json'), { round: 2, pairs: 50, before: 0.55, after: 0.72 });
  writeJson(join(dir, 'round_2', 'rs', 'best_of_k.json'), curve([0.2, 0.6, 1.1], [0.2, 0.21, 0.19]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('rounds read in order; the trajectory is SFT, each round\'s RS then PPO, then GAtt', () => {
  const rounds = readRounds(dir);
  expect(rounds.map((r) => r.round)).toEqual([1, 2]);
  expect(rounds[1]!.judge).toEqual({ rs: 0.58, ppo: 0.6 });
  expect(rounds[0]!.staleness).toEqual({ pairs: 40, before: 0.6, after: 0.7 });
  expect(judgeTrajectory(rounds, { label: 'SFT', judge: 0.5 }, 0.58)).toEqual([
    { label: 'SFT', judge: 0.5 },
    { label: 'round 1 RS', judge: 0.55 },
    { label: 'round 2 RS', judge: 0.58 },
    { label: 'round 2 PPO', judge: 0.6 },
    { label: 'GAtt', judge: 0.58 },
  ]);
  expect(judgeTrajectory([], { label: 'SFT', judge: null }, null)).toEqual([]);
});

test('report.md: the judge per round and stage, staleness before/after, best of K max/median; two plots; RS column', async () => {
  const report = await writeRunReport(dir, { name: 'demo', pngScale: 1 });
  const md = report.markdown;
  expect(md).toContain('| base | SFT | RS | PPO | DPO | GAtt |');
  expect(md).toContain('| round 1 RS | 0.550 |\n| round 2 RS | 0.580 |\n| round 2 PPO | 0.600 |\n| GAtt | 0.580 |');
  expect(md).toContain('| SFT | 0.500 |');
  expect(md).toContain('| 1 | 40 | 60.0% | 70.0% |\n| 2 | 50 | 55.0% | 72.0% |');
  expect(md).toContain('| round | K=1 | K=2 | K=4 |');
  expect(md).toContain('| 1 | 0.100 / 0.100 | 0.500 / 0.120 | 0.900 / 0.150 |');
  for (const name of ['rounds_judge', 'best_of_k']) {
    expect(report.plots.map((p) => p.name)).toContain(name);
    expect(pngInfo(readFileSync(join(dir, 'report', `${name}.png`))).width).toBeGreaterThan(100);
  }
  const inputs = readRunInputs(dir, 'demo');
  expect(terminalSummary(summarizeRun(inputs), inputs)).toContain('rounds        SFT 0.500 → round 1 RS 0.550 → round 2 RS 0.580 → round 2 PPO 0.600 → GAtt 0.580');
});

test('a run without rounds has no rounds section, no RS column', async () => {
  const plain = mkdtempSync(join(tmpdir(), 'report-plain-'));
  try {
    writeFakeRun(plain);
    const report = await writeRunReport(plain, { name: 'plain', pngScale: 1 });
    expect(report.markdown).not.toContain('## Rounds');
    expect(report.markdown).toContain('|  | base | SFT | PPO | DPO | GAtt |');
    expect(existsSync(join(plain, 'report', 'best_of_k.png'))).toBe(false);
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
});

test('round folders past the run\'s rounds.count (an earlier config\'s, left in the folder) are not reported', async () => {
  expect(readRounds(dir, 1).map((r) => r.round)).toEqual([1]);
  const report = await writeRunReport(dir, { name: 'demo', pngScale: 1, rounds: 1 });
  expect(report.markdown).toContain('| round 1 RS | 0.550 |\n| GAtt | 0.580 |');
  expect(report.markdown).not.toContain('round 2');
  expect(report.markdown).toContain('| 1 | 40 | 60.0% | 70.0% |\n');
  expect(report.markdown).not.toContain('| 2 | 50 | 55.0% | 72.0% |');
  const inputs = readRunInputs(dir, 'demo', 1);
  expect(terminalSummary(summarizeRun(inputs), inputs)).toContain('rounds        SFT 0.500 → round 1 RS 0.550 → GAtt 0.580\n');
});
