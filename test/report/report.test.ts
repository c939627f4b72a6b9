import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adherenceSchema,
  pngInfo,
  readMetricsRows,
  readResultFile,
  readRunInputs,
  summarizeRun,
  summaryBlocks,
  terminalSummary,
  toMarkdown,
  writeRunReport,
} from '../../src/report/index.js';
import { downsample } from '../../src/report/terminal.js';
import { safetyScatterSpec } from '../../src/report/plots.js';
import { writeFakeRun, writeJson } from './fake-run.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'report-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('inputs', () => {
  test('a torn last metrics line is skipped; a bad line elsewhere names the file and line', () => {
    const path = join(dir, 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"timestamp":5,"loss":2,"note":"x"}\n{"step":2,"times');
    expect(readMetricsRows(path)).toEqual([{ step: 1, timestamp: 5, loss: 2 }]);
    writeFileSync(path, '{"step":1}\nnope\n{"step":3}\n');
    expect(() => readMetricsRows(path)).toThrow(`${path} line 2: not valid JSON`);
    expect(readMetricsRows(join(dir, 'missing.jsonl'))).toEqual([]);
  });

  test('a result file is checked against its format; missing is null', () => {
    const path = join(dir, 'adherence.json');
    expect(readResultFile(path, adherenceSchema)).toBeNull();
    writeJson(path, { turns: [1, 2], with_gatt: { all: [1] }, without_gatt: { all: [0.5, 1.5] } });
    expect(() => readResultFile(path, adherenceSchema)).toThrow(
      `${path}: without_gatt.all.1: must be in [0, 1]; with_gatt.all: has 1 values, expected one per turn (2)`,
    );
  });
});

describe('summary', () => {
  test('final evaluation first, then the stage eval.json, then metrics.jsonl', () => {
    writeFakeRun(dir);
    const s = summarizeRun(readRunInputs(dir, 'demo'));
    expect(s.status).toEqual({ pretrain: 'not run', sft: 'finished', reward: 'finished', ppo: 'finished', dpo: 'not run', gatt: 'finished' });
    // base and ppo from eval/, sft from sft/eval.json, gatt nowhere.
    expect(s.judge).toEqual({ base: 0.1, sft: 0.4, rs: null, ppo: 0.55, dpo: null, gatt: null });
    expect(s.rewardAccuracy).toBe(0.75);
    expect(s.rewardAccuracyByStrength.significantly_better).toBe(0.95);
    expect(s.finalKl).toBe(0.05);
    expect(s.adherence?.without_gatt.all).toEqual([0.95, 0.5, 0.2]);
  });

  test('violation and false-refusal rates from eval/<model>.json, as rows of the summary table only when measured', () => {
    writeFakeRun(dir);
    const plain = summarizeRun(readRunInputs(dir, 'demo'));
    expect(plain.violationRate).toBeUndefined();
    expect((summaryBlocks(plain)[0] as { rows: string[][] }).rows.map((r) => r[0])).toEqual(['judge score']);
    writeJson(join(dir, 'eval', 'base.json'), { judge_score: 0.1, samples: [], violation_rate: 0.5, false_refusal_rate: 0 });
    writeJson(join(dir, 'eval', 'ppo.json'), { judge_score: 0.55, samples: [], violation_rate: 0.125, false_refusal_rate: 0.04 });
    const s = summarizeRun(readRunInputs(dir, 'demo'));
    expect(s.violationRate).toEqual({ base: 0.5, sft: null, ppo: 0.125, dpo: null, rs: null, gatt: null });
    expect(s.falseRefusalRate?.ppo).toBe(0.04);
    const rows = (summaryBlocks(s)[0] as { rows: string[][] }).rows;
    expect(rows[1]).toEqual(['violation rate', '50.0%', '—', '12.5%', '—', '—']);
    expect(rows[2]).toEqual(['false-refusal rate', '0.0%', '—', '4.0%', '—', '—']);
  });

  test('without result files, the metrics give PPO judge score and reward accuracy', () => {
    writeFakeRun(dir);
    rmSync(join(dir, 'eval'), { recursive: true });
    rmSync(join(dir, 'reward', 'eval.json'));
    const s = summarizeRun(readRunInputs(dir, 'demo'));
    expect(s.judge.ppo).toBe(0.5);
    expect(s.judge.base).toBeNull();
    expect(s.rewardAccuracy).toBe(0.7);
    expect(s.rewardAccuracyByStrength).toEqual({ significantly_better: 0.9, better: 0.6 });
  });
});

describe('writeRunReport', () => {
  test('writes report.md, report.html and a PNG + SVG per plot; every link resolves', async () => {
    writeFakeRun(dir);
    const report = await writeRunReport(dir, { name: 'demo', pngScale: 1 });
    expect(report.plots.map((p) => p.name)).toEqual(['loss', 'reward_accuracy', 'ppo', 'gatt_adherence']);
    for (const p of report.plots) {
      const svg = readFileSync(join(dir, p.svg), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toContain('DejaVu Sans');
      const size = svg.match(/<svg[^>]* width="(\d+)" height="(\d+)"/)!;
      // scale 1: the PNG has the SVG's size.
      expect(pngInfo(readFileSync(join(dir, p.png)))).toEqual({ width: Number(size[1]), height: Number(size[2]) });
    }
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(md).toBe(report.markdown);
    const mdLinks = [...md.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
    const htmlLinks = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(mdLinks).toHaveLength(8);
    expect(htmlLinks).toHaveLength(8);
    for (const link of [...mdLinks, ...htmlLinks]) expect(existsSync(join(dir, link))).toBe(true);

    expect(md).toContain('| judge score | 0.100 | 0.400 | 0.550 | not run |');
    expect(md).toContain('| 75.0% | 0.0500 |');
    expect(md).toContain('| without GAtt | 95.0% | 50.0% | 20.0% |');
    expect(md).toContain('| arithmetic | 0.200 | 0.500 | 0.600 | not run |');
    // Sample text is quoted in Markdown and escaped in HTML.
    expect(md).toContain('> A dog.\n> Yes.');
    expect(html).toContain('It is &lt;4&gt; | four.');
    expect(html).not.toContain('<4>');
  });

  test('a safety run: helpfulness-labelled judge row, both reward models, and the final model\'s safety-vs-helpfulness scatter', async () => {
    writeFakeRun(dir);
    const points = [
      { category: 'harmful', helpfulness: 0, safety: 1 },
      { category: 'harmful', helpfulness: 0.04, safety: 1 }, // same bin (0.0) as the first: one circle of 2
      { category: 'harmful', helpfulness: 1, safety: 0 },
      { category: 'borderline', helpfulness: 0.83, safety: 1 },
    ];
    writeJson(join(dir, 'eval', 'sft.json'), { judge_score: 0.4, samples: [], violation_rate: 0.5, false_refusal_rate: 0, points: points.slice(2) });
    writeJson(join(dir, 'eval', 'ppo.json'), { judge_score: 0.55, samples: [], violation_rate: 0.25, false_refusal_rate: 0.5, points });
    writeJson(join(dir, 'reward_safety', 'eval.json'), { accuracy: 0.987, accuracy_by_strength: {} });
    const s = summarizeRun(readRunInputs(dir, 'demo'));
    expect(s.safetyPoints).toEqual({ model: 'ppo', points }); // the last judged model with points
    expect(s.safetyRewardAccuracy).toBe(0.987);
    const report = await writeRunReport(dir, { name: 'demo', pngScale: 1 });
    expect(report.plots.map((p) => p.name)).toEqual(['loss', 'reward_accuracy', 'ppo', 'gatt_adherence', 'safety_scatter']);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toContain('| judge score (helpfulness) | 0.100 | 0.400 | 0.550 | not run |');
    expect(md).toContain('| violation rate | — | 50.0% | 25.0% | — |');
    expect(md).toContain('| false-refusal rate | — | 0.0% | 50.0% | — |');
    expect(md).toContain('| 75.0% | 98.7% | 0.0500 |');
    expect(readFileSync(join(dir, report.plots[4]!.svg), 'utf8')).toContain('Safety vs helpfulness: PPO');
    const spec = safetyScatterSpec(points, 'PPO') as { data: { values: unknown[] } };
    expect(spec.data.values).toEqual([
      { category: 'harmful', helpfulness: 0, verdict: 'safe', replies: 2 },
      { category: 'harmful', helpfulness: 1, verdict: 'unsafe', replies: 1 },
      { category: 'borderline', helpfulness: 0.8, verdict: 'safe', replies: 1 },
    ]);
  });

  test('a run with only some stages says "not run" and draws only what it has', async () => {
    writeFakeRun(dir, { withGatt: false });
    rmSync(join(dir, 'ppo'), { recursive: true });
    rmSync(join(dir, 'eval'), { recursive: true });
    const report = await writeRunReport(dir);
    expect(report.plots.map((p) => p.name)).toEqual(['loss', 'reward_accuracy']);
    expect(report.markdown).toContain('| judge score | not run | 0.400 | not run | not run |');
    expect(report.markdown).toContain('Instruction adherence (GAtt): not run.');
    expect(report.markdown).toContain('| ppo | not run |');
  });

  test('an empty run folder still gives a report', async () => {
    const report = await writeRunReport(dir);
    expect(report.plots).toEqual([]);
    expect(report.markdown).toContain('No stage has logged metrics yet.');
  });
});

test('DPO: its judge comes from eval/dpo.json, else its last eval/judge_score, and sits next to PPO in the table', () => {
  writeFakeRun(dir);
  mkdirSync(join(dir, 'dpo'), { recursive: true });
  writeFileSync(join(dir, 'dpo', 'metrics.jsonl'), [
    { step: 0, timestamp: 1, 'eval/judge_score': 0.4 },
    { step: 1, timestamp: 2, loss: 0.69 },
    { step: 2, timestamp: 3, loss: 0.6, 'eval/judge_score': 0.58 },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  let s = summarizeRun(readRunInputs(dir, 'demo'));
  expect(s.status.dpo).toBe('incomplete');
  expect(s.judge.dpo).toBe(0.58);
  writeJson(join(dir, 'eval', 'dpo.json'), { judge_score: 0.6, by_family: {}, samples: [] });
  s = summarizeRun(readRunInputs(dir, 'demo'));
  expect(s.judge.dpo).toBe(0.6);
  const table = toMarkdown(summaryBlocks(s)).split('\n').slice(0, 3);
  expect(table[0]).toBe('|  | base | SFT | PPO | DPO | GAtt |');
  expect(table[2]).toBe('| judge score | 0.100 | 0.400 | 0.550 | 0.600 | not run |');
});

describe('terminal summary', () => {
  test('numbers and small curves', () => {
    writeFakeRun(dir);
    const inputs = readRunInputs(dir, 'demo');
    const text = terminalSummary(summarizeRun(inputs), inputs, { reportPath: 'runs/demo/report.md' });
    expect(text.split('\n').slice(0, 6)).toEqual([
      'run demo: pretrain not run, sft finished, reward finished, ppo finished, dpo not run, gatt finished',
      'judge score   base 0.100   sft 0.400   ppo 0.550   dpo not run   gatt not run',
      'reward model  accuracy 75.0%   PPO final KL 0.0500',
      'GAtt adherence by turn 1/2/3:',
      '  without GAtt   95.0%  50.0%  20.0%',
      '  with GAtt     100.0%  90.0%  85.0%',
    ]);
    expect(text).toContain('sft loss\n');
    expect(text).toContain('ppo reward\n');
    expect(text.endsWith('report: runs/demo/report.md')).toBe(true);
  });

  test('downsample keeps the ends and spreads the rest', () => {
    expect(downsample([0, 1, 2, 3, 4, 5, 6, 7, 8], 3)).toEqual([0, 4, 8]);
    expect(downsample([1, 2], 5)).toEqual([1, 2]);
  });
});

test('markdown tables escape pipes and newlines', () => {
  expect(toMarkdown([{ kind: 'table', header: ['a'], rows: [['x|y\nz']] }])).toBe('| a |\n| --- |\n| x\\|y z |\n');
});

test("adherence.json as rlhf gatt writes it ({before, after} in percent) reads as with/without GAtt", () => {
  const path = join(dir, 'adherence.json');
  writeJson(path, {
    before: { turns: 3, dialogues: 4, all: [100, 50, null], by_family: { persona: [100, 25, null] } },
    after: { turns: 3, dialogues: 4, all: [100, 75, 75], by_family: { persona: [100, 100, 50] } },
  });
  expect(readResultFile(path, adherenceSchema)).toEqual({
    turns: [1, 2, 3],
    with_gatt: { all: [1, 0.75, 0.75], by_family: { persona: [1, 1, 0.5] } },
    without_gatt: { all: [1, 0.5, null], by_family: { persona: [1, 0.25, null] } },
    cases: 4,
  });
});
