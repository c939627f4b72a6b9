/**
 * The numbers the report shows, pulled out of a run's inputs: judge scores per model, reward-model
 * accuracy, final KL, loss / PPO series for the plots. Pure functions of `RunInputs`.
 *
 * Each number has a preferred source and fallbacks, so a stage run alone (no pipeline evaluation)
 * still shows what it logged: the pipeline's final evaluation → the stage's eval.json → its
 * metrics.jsonl.
 */
import {
  JUDGED_MODELS,
  STAGES,
  type AdherenceResult,
  type JudgeEval,
  type JudgedModel,
  type MetricsRow,
  type RunInputs,
  type StageInputs,
  type StageName,
} from './inputs.js';

export type StageStatus = 'finished' | 'incomplete' | 'not run';

export interface Sample {
  prompt: string;
  completion: string;
  score: number;
}

export interface RunSummary {
  name: string;
  status: Record<StageName, StageStatus>;
  /** Mean judge score per model, null when not measured. */
  judge: Record<JudgedModel, number | null>;
  judgeByFamily: Record<JudgedModel, Record<string, number>>;
  samples: Record<JudgedModel, Sample[]>;
  rewardAccuracy: number | null;
  rewardAccuracyByStrength: Record<string, number>;
  /** The last PPO iteration's KL to the reference (objective/kl). */
  finalKl: number | null;
  adherence: AdherenceResult | null;
  /** With safety prompts in the evaluation (issue 20): violation and false-refusal rates per model, null when not measured. */
  violationRate?: Record<JudgedModel, number | null>;
  falseRefusalRate?: Record<JudgedModel, number | null>;
  /** The safety reward model's held-out accuracy, when one was trained (reward_safety/eval.json). */
  safetyRewardAccuracy?: number;
  /** The (category, helpfulness, safety) points of the last model in JUDGED_MODELS order that has them (the final model). */
  safetyPoints?: { model: JudgedModel; points: Array<{ category: string; helpfulness: number; safety: number }> };
}

/** A point of a plotted series. */
export interface SeriesPoint {
  step: number;
  value: number;
}

/** The stage whose final model each judged model is (base: pretrain's, or a shipped base; rs: the last round's, judged only in eval/). */
const MODEL_STAGE: Record<JudgedModel, StageName | null> = { base: 'pretrain', sft: 'sft', rs: null, ppo: 'ppo', dpo: 'dpo', gatt: 'gatt' };

/** Metric names per quantity, first match wins (recipes name them TRL-style or plainly). */
export const LOSS_KEYS = ['train/loss', 'loss'];
export const EVAL_LOSS_KEYS = ['eval/loss', 'eval_loss'];
export const PPO_KEYS = {
  reward: ['objective/scores', 'objective/rlhf_reward'],
  kl: ['objective/kl'],
  judge: ['eval/judge_score'],
} as const;

export function stageStatus(s: StageInputs): StageStatus {
  if (s.finished) return 'finished';
  return s.ran ? 'incomplete' : 'not run';
}

/** `(step, value)` of every row that has one of `keys` (the first present in the rows). */
export function metricSeries(rows: readonly MetricsRow[], keys: readonly string[]): SeriesPoint[] {
  const key = keys.find((k) => rows.some((r) => r[k] !== undefined && Number.isFinite(r[k])));
  if (key === undefined) return [];
  return rows.filter((r) => r[key] !== undefined && Number.isFinite(r[key])).map((r) => ({ step: r.step, value: r[key]! }));
}

/** The last logged value of the first of `keys` found; null when none was logged. */
export function lastMetric(rows: readonly MetricsRow[], keys: readonly string[]): number | null {
  const series = metricSeries(rows, keys);
  return series.length === 0 ? null : series[series.length - 1]!.value;
}

/** `eval/accuracy_by_strength/<level>` metrics of the last row that has them (the reward recipe's final evaluation). */
export function accuracyByStrengthFromMetrics(rows: readonly MetricsRow[]): Record<string, number> {
  const prefix = 'eval/accuracy_by_strength/';
  for (let i = rows.length - 1; i >= 0; i--) {
    const found = Object.entries(rows[i]!).filter(([k]) => k.startsWith(prefix));
    if (found.length > 0) return Object.fromEntries(found.map(([k, v]) => [k.slice(prefix.length), v]));
  }
  return {};
}

/** The judged models a table shows: every one, except RS (only in runs with rounds) when it was not judged. */
export function shownModels(s: Pick<RunSummary, 'judge'>): JudgedModel[] {
  return JUDGED_MODELS.filter((m) => m !== 'rs' || s.judge.rs !== null);
}

/** Violation and false-refusal rates from eval/<model>.json, only when some model has them. */
function safetyRates(inputs: RunInputs): Pick<RunSummary, 'violationRate' | 'falseRefusalRate'> {
  const of = (key: 'violation_rate' | 'false_refusal_rate') =>
    Object.fromEntries(JUDGED_MODELS.map((m) => [m, judgeOf(inputs, m)?.[key] ?? null])) as Record<JudgedModel, number | null>;
  const violationRate = of('violation_rate');
  const falseRefusalRate = of('false_refusal_rate');
  const any = JUDGED_MODELS.some((m) => violationRate[m] !== null || falseRefusalRate[m] !== null);
  return any ? { violationRate, falseRefusalRate } : {};
}

/** The final model's safety-prompt points: the last judged model (GAtt, DPO, PPO, RS, SFT, base) that has them. */
function finalSafetyPoints(inputs: RunInputs): Pick<RunSummary, 'safetyPoints'> {
  for (const model of [...JUDGED_MODELS].reverse()) {
    const points = judgeOf(inputs, model)?.points;
    if (points && points.length > 0) return { safetyPoints: { model, points } };
  }
  return {};
}

function judgeOf(inputs: RunInputs, model: JudgedModel): JudgeEval | null {
  const stage = MODEL_STAGE[model];
  return inputs.finalEval[model] ?? (stage === null ? null : inputs.stages[stage].judge);
}

export function summarizeRun(inputs: RunInputs): RunSummary {
  const status = Object.fromEntries(STAGES.map((s) => [s, stageStatus(inputs.stages[s])])) as Record<StageName, StageStatus>;
  const judge = {} as Record<JudgedModel, number | null>;
  const judgeByFamily = {} as Record<JudgedModel, Record<string, number>>;
  const samples = {} as Record<JudgedModel, Sample[]>;
  for (const model of JUDGED_MODELS) {
    const result = judgeOf(inputs, model);
    judge[model] = result?.judge_score ?? null;
    judgeByFamily[model] = result?.by_family ?? {};
    samples[model] = result?.samples ?? [];
  }
  // PPO and DPO log the judge on their held-out prompts as they train: use the last one if nothing better.
  judge.ppo ??= lastMetric(inputs.stages.ppo.metrics, PPO_KEYS.judge);
  judge.dpo ??= lastMetric(inputs.stages.dpo.metrics, PPO_KEYS.judge);

  const reward = inputs.stages.reward;
  const rewardAccuracy = reward.reward?.accuracy ?? lastMetric(reward.metrics, ['eval/accuracy']);
  const rewardAccuracyByStrength = reward.reward?.accuracy_by_strength ?? accuracyByStrengthFromMetrics(reward.metrics);

  return {
    name: inputs.name,
    status,
    judge,
    judgeByFamily,
    samples,
    rewardAccuracy,
    rewardAccuracyByStrength,
    finalKl: lastMetric(inputs.stages.ppo.metrics, PPO_KEYS.kl),
    adherence: inputs.stages.gatt.adherence,
    ...safetyRates(inputs),
    ...finalSafetyPoints(inputs),
    ...(inputs.safetyReward ? { safetyRewardAccuracy: inputs.safetyReward.accuracy } : {}),
  };
}
