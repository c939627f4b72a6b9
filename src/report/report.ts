/**
 * The run report: `runs/<name>/report.md` and `report.html`, with the plots as PNG and SVG under
 * `runs/<name>/report/`. Reads only files (metrics.jsonl, eval.json, adherence.json), so it can be
 * rebuilt any time and works for a run with stages missing.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../config/write.js';
import { type Block, toHtml, toMarkdown } from './document.js';
import { STAGES, readRunInputs, type AdherenceResult, type JudgedModel, type RunInputs } from './inputs.js';
import { adherenceSpec, lossCurvesSpec, lossPoints, ppoCurvesSpec, rewardAccuracySpec, safetyScatterSpec, specBase } from './plots.js';
import { bestOfKSpec, judgeTrajectory, readRounds, roundsBlocks, roundsJudgeSpec } from './rounds.js';
import { specToSvg, svgToPng } from './render.js';
import { shownModels, summarizeRun, type RunSummary } from './summary.js';

export const REPORT_MD = 'report.md';
export const REPORT_HTML = 'report.html';
/** Plot files, relative to the run folder. */
export const PLOTS_DIR = 'report';

export interface PlotFile {
  name: string;
  title: string;
  /** Relative to the run folder. */
  png: string;
  svg: string;
}

export interface RunReport {
  summary: RunSummary;
  inputs: RunInputs;
  markdown: string;
  html: string;
  plots: PlotFile[];
}

const MODEL_LABEL: Record<JudgedModel, string> = { base: 'base', sft: 'SFT', rs: 'RS', ppo: 'PPO', dpo: 'DPO', gatt: 'GAtt' };

export const percent = (x: number | null, none = 'not run'): string => (x === null ? none : `${(x * 100).toFixed(1)}%`);
export const score = (x: number | null): string => (x === null ? 'not run' : x.toFixed(3));

/** The plots this run has data for, in report order. */
export function reportPlots(inputs: RunInputs, summary: RunSummary): Array<{ name: string; title: string; spec: TopLevelSpec }> {
  const candidates: Array<{ name: string; title: string; spec: TopLevelSpec | null }> = [
    { name: 'loss', title: 'Loss per stage', spec: lossCurvesSpec(lossPoints(STAGES.map((s) => inputs.stages[s]))) },
    { name: 'reward_accuracy', title: 'Reward model accuracy by preference strength', spec: rewardAccuracySpec(summary.rewardAccuracyByStrength, summary.rewardAccuracy) },
    { name: 'ppo', title: 'PPO reward, KL and judge score', spec: ppoCurvesSpec(inputs.stages.ppo) },
    { name: 'gatt_adherence', title: 'Instruction adherence by turn, with and without GAtt', spec: adherenceSpec(summary.adherence) },
    {
      name: 'safety_scatter',
      title: 'Safety vs helpfulness of the final model on the safety prompts',
      spec: summary.safetyPoints ? safetyScatterSpec(summary.safetyPoints.points, MODEL_LABEL[summary.safetyPoints.model]) : null,
    },
    ...roundsPlots(inputs, summary),
  ];
  return candidates.filter((c): c is { name: string; title: string; spec: TopLevelSpec } => c.spec !== null);
}

/** The iterative rounds' plots (none in a run without rounds). */
function roundsPlots(inputs: RunInputs, summary: RunSummary): Array<{ name: string; title: string; spec: TopLevelSpec | null }> {
  const rounds = readRounds(inputs.runDir, inputs.roundsCount);
  if (rounds.length === 0) return [];
  return [
    { name: 'rounds_judge', title: 'Judge score per round and stage', spec: roundsJudgeSpec(roundsTrajectory(inputs, summary), specBase()) },
    { name: 'best_of_k', title: 'Best of K: max and median reward', spec: bestOfKSpec(rounds, specBase()) },
  ];
}

function roundsTrajectory(inputs: RunInputs, summary: RunSummary) {
  return judgeTrajectory(readRounds(inputs.runDir, inputs.roundsCount), { label: 'SFT', judge: summary.judge.sft }, summary.judge.gatt);
}

export function adherenceTable(a: AdherenceResult): Block {
  return {
    kind: 'table',
    header: ['turn', ...a.turns.map(String)],
    rows: [
      ['without GAtt', ...a.without_gatt.all.map((x) => percent(x, '–'))],
      ['with GAtt', ...a.with_gatt.all.map((x) => percent(x, '–'))],
    ],
  };
}

/** The summary as document blocks (shared by report.md, report.html and the README's example). */
export function summaryBlocks(s: RunSummary): Block[] {
  const blocks: Block[] = [
    {
      kind: 'table',
      header: ['', ...shownModels(s).map((m) => MODEL_LABEL[m])],
      rows: [
        [s.violationRate ? 'judge score (helpfulness)' : 'judge score', ...shownModels(s).map((m) => score(s.judge[m]))],
        ...(s.violationRate ? [['violation rate', ...shownModels(s).map((m) => percent(s.violationRate![m], '—'))]] : []),
        ...(s.falseRefusalRate ? [['false-refusal rate', ...shownModels(s).map((m) => percent(s.falseRefusalRate![m], '—'))]] : []),
      ],
    },
    s.safetyRewardAccuracy === undefined
      ? {
          kind: 'table',
          header: ['reward-model accuracy', 'final KL (PPO)'],
          rows: [[percent(s.rewardAccuracy), s.finalKl === null ? 'not run' : s.finalKl.toFixed(4)]],
        }
      : {
          kind: 'table',
          header: ['reward-model accuracy: helpfulness', 'safety', 'final KL (PPO)'],
          rows: [[percent(s.rewardAccuracy), percent(s.safetyRewardAccuracy), s.finalKl === null ? 'not run' : s.finalKl.toFixed(4)]],
        },
  ];
  if (s.adherence) blocks.push({ kind: 'paragraph', text: 'Instruction adherence by turn:' }, adherenceTable(s.adherence));
  else blocks.push({ kind: 'paragraph', text: 'Instruction adherence (GAtt): not run.' });
  return blocks;
}

export function reportBlocks(summary: RunSummary, plots: readonly PlotFile[], inputs?: RunInputs): Block[] {
  const s = summary;
  const blocks: Block[] = [
    { kind: 'heading', level: 1, text: `Run report: ${s.name}` },
    {
      kind: 'table',
      header: ['stage', 'status'],
      rows: STAGES.map((st) => [st, s.status[st]]),
    },
    { kind: 'heading', level: 2, text: 'Summary' },
    ...summaryBlocks(s),
    ...(inputs ? roundsBlocks(readRounds(inputs.runDir, inputs.roundsCount), roundsTrajectory(inputs, s)) : []),
    { kind: 'heading', level: 2, text: 'Plots' },
  ];
  if (plots.length === 0) blocks.push({ kind: 'paragraph', text: 'No stage has logged metrics yet.' });
  for (const p of plots) blocks.push({ kind: 'image', src: p.png, svg: p.svg, alt: p.title });

  const families = [...new Set(shownModels(s).flatMap((m) => Object.keys(s.judgeByFamily[m])))].sort();
  if (families.length > 0) {
    blocks.push(
      { kind: 'heading', level: 2, text: 'Judge score by task family' },
      {
        kind: 'table',
        header: ['family', ...shownModels(s).map((m) => MODEL_LABEL[m])],
        rows: families.map((f) => [f, ...shownModels(s).map((m) => score(s.judgeByFamily[m][f] ?? null))]),
      },
    );
  }
  if (s.rewardAccuracy !== null && Object.keys(s.rewardAccuracyByStrength).length > 0) {
    blocks.push(
      { kind: 'heading', level: 2, text: 'Reward model accuracy by preference strength' },
      {
        kind: 'table',
        header: ['strength', 'accuracy'],
        rows: Object.entries(s.rewardAccuracyByStrength).map(([level, acc]) => [level, percent(acc)]),
      },
    );
  }

  blocks.push({ kind: 'heading', level: 2, text: 'Sample generations' });
  for (const m of shownModels(s)) {
    blocks.push({ kind: 'heading', level: 3, text: MODEL_LABEL[m] });
    const samples = s.samples[m];
    if (samples.length === 0) blocks.push({ kind: 'paragraph', text: s.judge[m] === null ? 'not run' : 'no samples recorded' });
    for (const x of samples) blocks.push({ kind: 'sample', ...x });
  }
  return blocks;
}

export interface WriteReportOptions {
  /** Run name shown in the title (default: the folder's name). */
  name?: string;
  /** PNG pixel scale (default 2). */
  pngScale?: number;
  /** rounds.count of the pipeline run: later round_<k> folders (an earlier config's) are not reported. */
  rounds?: number;
}

/** Read `runDir`, render the plots and write report.md, report.html and report/*.{svg,png}. */
export async function writeRunReport(runDir: string, opts: WriteReportOptions = {}): Promise<RunReport> {
  const dir = resolve(runDir);
  const inputs = readRunInputs(dir, opts.name ?? basename(dir), opts.rounds ?? null);
  const summary = summarizeRun(inputs);

  // Plots of an earlier report may no longer apply (a stage re-run without output): start clean.
  const plotsDir = join(dir, PLOTS_DIR);
  rmSync(plotsDir, { recursive: true, force: true });
  mkdirSync(plotsDir, { recursive: true });
  const plots: PlotFile[] = [];
  for (const p of reportPlots(inputs, summary)) {
    const svg = await specToSvg(p.spec);
    const file: PlotFile = { name: p.name, title: p.title, svg: `${PLOTS_DIR}/${p.name}.svg`, png: `${PLOTS_DIR}/${p.name}.png` };
    writeFileSync(join(dir, file.svg), svg);
    writeFileSync(join(dir, file.png), svgToPng(svg, opts.pngScale === undefined ? {} : { scale: opts.pngScale }));
    plots.push(file);
  }

  const blocks = reportBlocks(summary, plots, inputs);
  const markdown = toMarkdown(blocks);
  const html = toHtml(`Run report: ${summary.name}`, blocks);
  writeFileAtomic(join(dir, REPORT_MD), markdown);
  writeFileAtomic(join(dir, REPORT_HTML), html);
  return { summary, inputs, markdown, html, plots };
}
