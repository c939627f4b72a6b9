/**
 * The report's plots as vega-lite specs: pure data → spec functions, rendered by `render.ts`.
 * Each returns null when there is nothing to draw, so a missing stage simply has no plot.
 */
import type { TopLevelSpec } from 'vega-lite';
import { STRENGTH_LEVELS, type AdherenceResult, type StageInputs, type StageName } from './inputs.js';
import { EVAL_LOSS_KEYS, LOSS_KEYS, PPO_KEYS, metricSeries, type SeriesPoint } from './summary.js';

/** The font family every plot uses; resvg gets the same font's files (see `render.ts`). */
export const PLOT_FONT_FAMILY = 'DejaVu Sans';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const PANEL = { width: 260, height: 160 };

/** Shared look: the shipped font everywhere, white background, no chart border. */
function baseConfig() {
  return {
    font: PLOT_FONT_FAMILY,
    background: 'white',
    view: { stroke: null },
    axis: { labelFont: PLOT_FONT_FAMILY, titleFont: PLOT_FONT_FAMILY },
    legend: { labelFont: PLOT_FONT_FAMILY, titleFont: PLOT_FONT_FAMILY },
    header: { labelFont: PLOT_FONT_FAMILY, titleFont: PLOT_FONT_FAMILY, labelFontSize: 12 },
    title: { font: PLOT_FONT_FAMILY },
  };
}

/** `$schema` and the shared look, for specs built outside this file (src/report/rounds.ts). */
export function specBase(): { $schema: string; config: ReturnType<typeof baseConfig> } {
  return { $schema: SCHEMA, config: baseConfig() };
}

export interface LossPoint {
  stage: StageName;
  split: 'train' | 'eval';
  step: number;
  loss: number;
}

/** Train and eval loss rows of the stages that logged a loss. */
export function lossPoints(stages: readonly StageInputs[]): LossPoint[] {
  const points: LossPoint[] = [];
  for (const s of stages) {
    const add = (split: LossPoint['split'], series: SeriesPoint[]) =>
      series.forEach((p) => points.push({ stage: s.stage, split, step: p.step, loss: p.value }));
    add('train', metricSeries(s.metrics, LOSS_KEYS));
    add('eval', metricSeries(s.metrics, EVAL_LOSS_KEYS));
  }
  return points;
}

/** One panel per stage (own axes), train and eval loss against optimizer step. */
export function lossCurvesSpec(points: readonly LossPoint[]): TopLevelSpec | null {
  if (points.length === 0) return null;
  const stages = [...new Set(points.map((p) => p.stage))];
  return {
    $schema: SCHEMA,
    title: 'Loss per stage',
    data: { values: points.map((p) => ({ ...p })) },
    facet: { column: { field: 'stage', type: 'nominal', sort: stages, title: null } },
    spec: {
      ...PANEL,
      mark: { type: 'line', point: { size: 12 } },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'step' },
        y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
        color: { field: 'split', type: 'nominal', title: null, scale: { domain: ['train', 'eval'] } },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: baseConfig(),
  };
}

/** Held-out reward-model accuracy per preference-strength level (Llama 2 Table 8 in miniature). */
export function rewardAccuracySpec(byStrength: Readonly<Record<string, number>>, overall: number | null): TopLevelSpec | null {
  const levels = Object.keys(byStrength);
  if (levels.length === 0) return null;
  const order = [...STRENGTH_LEVELS.filter((l) => levels.includes(l)), ...levels.filter((l) => !(STRENGTH_LEVELS as readonly string[]).includes(l))];
  const label = (level: string) => level.replaceAll('_', ' ');
  const values = order.map((level) => ({ level: label(level), accuracy: byStrength[level]! }));
  return {
    $schema: SCHEMA,
    title: {
      text: 'Reward model accuracy by preference strength',
      ...(overall === null ? {} : { subtitle: `held-out pairs, overall ${(overall * 100).toFixed(1)}%` }),
    },
    width: 420,
    height: 180,
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'level', type: 'nominal', sort: order.map(label), title: 'chosen is …', axis: { labelAngle: 0 } },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%' }, title: 'accuracy' },
        },
      },
      {
        mark: { type: 'rule', strokeDash: [4, 3], color: 'gray' },
        encoding: { y: { datum: 0.5 } },
      },
    ],
    config: baseConfig(),
  };
}

/** PPO: mean reward-model score, KL to the reference and judge score against iteration. */
export function ppoCurvesSpec(ppo: StageInputs): TopLevelSpec | null {
  const panels: Array<{ metric: string; step: number; value: number }> = [];
  const add = (metric: string, keys: readonly string[]) =>
    metricSeries(ppo.metrics, keys).forEach((p) => panels.push({ metric, step: p.step, value: p.value }));
  add('reward', PPO_KEYS.reward);
  add('KL', PPO_KEYS.kl);
  add('judge score', PPO_KEYS.judge);
  if (panels.length === 0) return null;
  const metrics = [...new Set(panels.map((p) => p.metric))];
  return {
    $schema: SCHEMA,
    title: 'PPO',
    data: { values: panels },
    facet: { column: { field: 'metric', type: 'nominal', sort: metrics, title: null } },
    spec: {
      ...PANEL,
      mark: { type: 'line', point: { size: 12 } },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'iteration' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: baseConfig(),
  };
}

/**
 * The safety-vs-helpfulness scatter of one model's replies to the safety prompts (Llama 2 §4, Fig 14
 * in miniature, with the gold judge's scores instead of the reward models'): helpfulness binned to
 * tenths, safe / unsafe as the judge gives it, one circle per (category, bin, verdict) sized by count,
 * so overlapping replies stay visible without random jitter (the SVG stays the same run to run).
 */
export function safetyScatterSpec(points: readonly { category: string; helpfulness: number; safety: number }[], model: string): TopLevelSpec | null {
  if (points.length === 0) return null;
  const counts = new Map<string, { category: string; helpfulness: number; verdict: string; replies: number }>();
  for (const p of points) {
    const helpfulness = Math.round(p.helpfulness * 10) / 10;
    const key = `${p.category}|${helpfulness}|${p.safety}`;
    const c = counts.get(key) ?? { category: p.category, helpfulness, verdict: p.safety >= 0.5 ? 'safe' : 'unsafe', replies: 0 };
    c.replies++;
    counts.set(key, c);
  }
  return {
    $schema: SCHEMA,
    title: { text: `Safety vs helpfulness: ${model}`, subtitle: `${points.length} replies to the safety prompts, gold judge` },
    width: 320,
    height: 200,
    data: { values: [...counts.values()] },
    mark: { type: 'circle', opacity: 0.6 },
    encoding: {
      x: { field: 'helpfulness', type: 'quantitative', scale: { domain: [0, 1] }, title: 'helpfulness' },
      y: { field: 'verdict', type: 'nominal', sort: ['safe', 'unsafe'], title: 'safety (gold judge)' },
      size: { field: 'replies', type: 'quantitative', title: 'replies' },
      color: { field: 'category', type: 'nominal', title: null },
      yOffset: { field: 'category', type: 'nominal' },
    },
    config: baseConfig(),
  };
}

/** Instruction adherence by turn, with and without Ghost Attention (Llama 2 Figure 28 in miniature). */
export function adherenceSpec(a: AdherenceResult | null): TopLevelSpec | null {
  if (a === null) return null;
  const side = (model: string, all: readonly (number | null)[]) =>
    a.turns.map((turn, i) => ({ model, turn, adherence: all[i] ?? null })).filter((p) => p.adherence !== null);
  const values = [...side('with GAtt', a.with_gatt.all), ...side('without GAtt', a.without_gatt.all)];
  if (values.length === 0) return null;
  return {
    $schema: SCHEMA,
    title: 'Instruction adherence by turn',
    width: 320,
    height: 180,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'turn', type: 'ordinal', title: 'turn', axis: { labelAngle: 0 } },
      y: { field: 'adherence', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%' }, title: 'follows the instruction' },
      color: { field: 'model', type: 'nominal', title: null, scale: { domain: ['with GAtt', 'without GAtt'] } },
    },
    config: baseConfig(),
  };
}
