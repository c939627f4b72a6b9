/**
 * The short summary the terminal prints at the end of a pipeline: the judge scores, reward-model
 * accuracy, final KL, GAtt adherence, and small asciichart curves of the losses and PPO reward.
 */
import asciichart from 'asciichart';
import { STAGES, type RunInputs } from './inputs.js';
import { percent, score } from './report.js';
import { judgeTrajectory, readRounds } from './rounds.js';
import { LOSS_KEYS, PPO_KEYS, metricSeries, shownModels, type RunSummary } from './summary.js';

/** At most `width` values, evenly picked (first and last kept), so a long run fits a terminal. */
export function downsample(values: readonly number[], width: number): number[] {
  if (values.length <= width) return [...values];
  return Array.from({ length: width }, (_, i) => values[Math.round((i * (values.length - 1)) / (width - 1))]!);
}

/** A small labelled line chart, or null for fewer than two points. */
export function miniChart(title: string, values: readonly number[], opts: { width?: number; height?: number } = {}): string | null {
  if (values.length < 2) return null;
  const series = downsample(values, opts.width ?? 60);
  const chart = asciichart.plot(series, { height: opts.height ?? 5, format: (x: number) => x.toFixed(3).padStart(9) });
  return `${title}\n${chart}`;
}

export function terminalSummary(summary: RunSummary, inputs: RunInputs, opts: { reportPath?: string } = {}): string {
  const s = summary;
  const lines: string[] = [`run ${s.name}: ${STAGES.map((st) => `${st} ${s.status[st]}`).join(', ')}`];
  lines.push(`judge score   ${shownModels(s).map((m) => `${m} ${score(s.judge[m])}`).join('   ')}`);
  const rounds = readRounds(inputs.runDir, inputs.roundsCount);
  if (rounds.length > 0) {
    const start = { label: 'SFT', judge: s.judge.sft };
    lines.push(`rounds        ${judgeTrajectory(rounds, start, s.judge.gatt).map((p) => `${p.label} ${p.judge.toFixed(3)}`).join(' → ')}`);
  }
  lines.push(`reward model  accuracy ${percent(s.rewardAccuracy)}   PPO final KL ${s.finalKl === null ? 'not run' : s.finalKl.toFixed(4)}`);
  if (s.adherence) {
    const a = s.adherence;
    lines.push(`GAtt adherence by turn ${a.turns.join('/')}:`);
    lines.push(`  without GAtt  ${a.without_gatt.all.map((x) => percent(x, '–').padStart(6)).join(' ')}`);
    lines.push(`  with GAtt     ${a.with_gatt.all.map((x) => percent(x, '–').padStart(6)).join(' ')}`);
  }
  const charts = [
    ...(['pretrain', 'sft', 'reward', 'dpo', 'gatt'] as const).map((st) =>
      miniChart(`${st} loss`, metricSeries(inputs.stages[st].metrics, LOSS_KEYS).map((p) => p.value)),
    ),
    miniChart('ppo reward', metricSeries(inputs.stages.ppo.metrics, PPO_KEYS.reward).map((p) => p.value)),
  ].filter((c): c is string => c !== null);
  if (charts.length > 0) lines.push('', ...charts.flatMap((c) => [c, '']));
  if (opts.reportPath) lines.push(`report: ${opts.reportPath}`);
  return lines.join('\n');
}
