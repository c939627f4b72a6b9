/**
 * What the run report reads from a run folder (`runs/<name>/`), and the small JSON result files the
 * stages write for it. Every reader is tolerant: a missing stage or file gives `null` (the report
 * says "not run"); a file that exists but does not parse is an error naming the file.
 *
 *   runs/<name>/<stage>/metrics.jsonl     {"step", "timestamp", ...metrics}   every stage (tracking)
 *   runs/<name>/<stage>/eval.json         JudgeEval                           pretrain | sft | ppo | dpo | gatt
 *   runs/<name>/reward/eval.json          RewardEval                          reward
 *   runs/<name>/gatt/adherence.json       AdherenceResult                     gatt
 *   runs/<name>/eval/<model>.json         JudgeEval                           the pipeline's final evaluation
 *   runs/<name>/reward_safety/eval.json   RewardEval                          the safety reward model (issue 20), when trained
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { readJsonFile } from '../json-file.js';

export const STAGE_EVAL_FILE = 'eval.json';
export const ADHERENCE_FILE = 'adherence.json';
export const METRICS_JSONL = 'metrics.jsonl';
/** The pipeline's final evaluation: one JudgeEval per model under `runs/<name>/eval/`. */
export const FINAL_EVAL_DIR = 'eval';

/** Stage folders in pipeline order. */
export const STAGES = ['pretrain', 'sft', 'reward', 'ppo', 'dpo', 'gatt'] as const;
export type StageName = (typeof STAGES)[number];

/** The safety reward model's folder (Llama 2's second reward model), beside `reward/`. */
export const SAFETY_REWARD_STAGE_DIR = 'reward_safety';

/** The models the judge compares, in the order the summary table shows them. */
export const JUDGED_MODELS = ['base', 'sft', 'rs', 'ppo', 'dpo', 'gatt'] as const;
export type JudgedModel = (typeof JUDGED_MODELS)[number];

/** Llama 2's preference-strength levels, strongest first (the reward-accuracy plot's order). */
export const STRENGTH_LEVELS = ['significantly_better', 'better', 'slightly_better', 'negligibly_better'] as const;

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const fraction = finite.refine((x) => x >= 0 && x <= 1, 'must be in [0, 1]');

/**
 * `eval.json` of a generating stage: the gold judge's mean score of the model's answers to the
 * held-out prompts (in [0, 1]), the mean per task family, and a few answers to show.
 */
export const judgeEvalSchema = z.object({
  judge_score: fraction,
  by_family: z.record(z.string(), fraction).default({}),
  /** How many prompts were judged. */
  count: z.number().int().min(0).optional(),
  samples: z
    .array(z.object({ prompt: z.string(), completion: z.string(), score: finite }))
    .default([]),
  /** With pipeline eval.safety_prompts: harmful replies that are unsafe, borderline prompts refused (issue 20). */
  violation_rate: fraction.nullable().optional(),
  false_refusal_rate: fraction.nullable().optional(),
  /** Mean combined gold score on the harmful prompts; mean helpfulness on the borderline ones. */
  harmful_score: fraction.nullable().optional(),
  borderline_helpfulness: fraction.nullable().optional(),
  /** One (category, helpfulness, safety) point per safety-prompt reply: the safety-vs-helpfulness scatter's data. */
  points: z.array(z.object({ category: z.string(), helpfulness: fraction, safety: fraction })).optional(),
});
export type JudgeEval = z.output<typeof judgeEvalSchema>;

/** `reward/eval.json`: accuracy on the held-out pairs, overall and per strength level (fractions). */
export const rewardEvalSchema = z.object({
  accuracy: fraction,
  accuracy_by_strength: z.record(z.string(), fraction).default({}),
  /** Held-out pairs per strength level (optional, shown in the table when present). */
  pairs_by_strength: z.record(z.string(), z.number().int().min(0)).optional(),
});
export type RewardEval = z.output<typeof rewardEvalSchema>;

/** Adherence per turn (fractions in [0, 1], one per entry of `turns`; null: no case reached that turn). */
const adherenceSeries = z.object({
  all: z.array(fraction.nullable()),
  by_family: z.record(z.string(), z.array(fraction.nullable())).default({}),
});

/**
 * `gatt/adherence.json`: instruction adherence by turn of the model before Ghost Attention
 * (`without_gatt`, its input model) and after it (`with_gatt`), on the same cases.
 */
export const adherenceFileSchema = z
  .object({
    turns: z.array(z.number().int().min(1)).min(1),
    with_gatt: adherenceSeries,
    without_gatt: adherenceSeries,
    /** Cases evaluated per turn. */
    cases: z.number().int().min(0).optional(),
  })
  .superRefine((a, ctx) => {
    for (const side of ['with_gatt', 'without_gatt'] as const) {
      const series = a[side];
      const check = (values: unknown[], path: (string | number)[]) => {
        if (values.length !== a.turns.length) {
          ctx.addIssue({ code: 'custom', path, message: `has ${values.length} values, expected one per turn (${a.turns.length})` });
        }
      };
      check(series.all, [side, 'all']);
      for (const [family, values] of Object.entries(series.by_family)) check(values, [side, 'by_family', family]);
    }
  });
export type AdherenceResult = z.output<typeof adherenceFileSchema>;

/**
 * The form `rlhf gatt` writes: `{before, after}`, each `{turns: N, all, by_family}` with
 * percentages (0–100, null for no cases) at turns 1..N.
 */
const percentSeries = z.array(z.number().min(0).max(100).nullable());
const gattSummary = z.object({
  turns: z.number().int().min(1),
  dialogues: z.number().int().min(0).optional(),
  all: percentSeries,
  by_family: z.record(z.string(), percentSeries).default({}),
});
const beforeAfterSchema = z.object({ before: gattSummary, after: gattSummary }).transform((b): AdherenceResult => {
  const toFractions = (xs: (number | null)[]) => xs.map((x) => (x === null ? null : x / 100));
  const series = (s: z.output<typeof gattSummary>) => ({
    all: toFractions(s.all),
    by_family: Object.fromEntries(Object.entries(s.by_family).map(([f, xs]) => [f, toFractions(xs)])),
  });
  return {
    turns: Array.from({ length: b.after.turns }, (_, i) => i + 1),
    with_gatt: series(b.after),
    without_gatt: series(b.before),
    ...(b.after.dialogues !== undefined ? { cases: b.after.dialogues } : {}),
  };
});

/** adherence.json in either form, read as {@link AdherenceResult}. */
export const adherenceSchema = z.union([adherenceFileSchema, beforeAfterSchema]);

/** One metrics.jsonl row: `step`, `timestamp` and the logged metrics. */
export interface MetricsRow {
  step: number;
  timestamp: number;
  [metric: string]: number;
}

/** Read a JSON result file against its schema; null when the file does not exist. */
export function readResultFile<S extends z.ZodType>(path: string, schema: S): z.output<S> | null {
  if (!existsSync(path)) return null;
  const parsed = schema.safeParse(readJsonFile(path));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new UserError(`${path}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Rows of a metrics.jsonl (empty when the file is missing). A torn last line (a crash mid-write)
 * is skipped; a bad line elsewhere is an error naming the line.
 */
export function readMetricsRows(path: string): MetricsRow[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const rows: MetricsRow[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      const isLast = lines.slice(i + 1).every((l) => l.trim() === '');
      if (isLast) return;
      throw new UserError(`${path} line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (row === null || typeof row !== 'object' || typeof (row as { step?: unknown }).step !== 'number') {
      throw new UserError(`${path} line ${i + 1}: expected an object with a numeric "step"`);
    }
    const numeric: MetricsRow = { step: 0, timestamp: 0 };
    for (const [k, v] of Object.entries(row as Record<string, unknown>)) if (typeof v === 'number') numeric[k] = v;
    rows.push(numeric);
  });
  return rows;
}

/** Everything one stage folder holds for the report; null fields are missing files. */
export interface StageInputs {
  stage: StageName;
  dir: string;
  /** The folder exists (the stage ran, at least partly). */
  ran: boolean;
  /** final/ exists: the stage finished. */
  finished: boolean;
  metrics: MetricsRow[];
  judge: JudgeEval | null;
  reward: RewardEval | null;
  adherence: AdherenceResult | null;
}

export interface RunInputs {
  runDir: string;
  name: string;
  stages: Record<StageName, StageInputs>;
  /** The pipeline's final evaluation (runs/<name>/eval/<model>.json), per model. */
  finalEval: Partial<Record<JudgedModel, JudgeEval>>;
  /** The safety reward model's held-out evaluation (runs/<name>/reward_safety/eval.json); null when not trained. */
  safetyReward: RewardEval | null;
  /** rounds.count of the run that wrote the folder: round_<k> folders past it are leftovers of an earlier config. null = read all. */
  roundsCount: number | null;
}

export function readStageInputs(runDir: string, stage: StageName): StageInputs {
  const dir = join(runDir, stage);
  const evalPath = join(dir, STAGE_EVAL_FILE);
  return {
    stage,
    dir,
    ran: existsSync(dir),
    finished: existsSync(join(dir, 'final')),
    metrics: readMetricsRows(join(dir, METRICS_JSONL)),
    judge: stage === 'reward' ? null : readResultFile(evalPath, judgeEvalSchema),
    reward: stage === 'reward' ? readResultFile(evalPath, rewardEvalSchema) : null,
    adherence: stage === 'gatt' ? readResultFile(join(dir, ADHERENCE_FILE), adherenceSchema) : null,
  };
}

export function readRunInputs(runDir: string, name: string, roundsCount: number | null = null): RunInputs {
  const stages = Object.fromEntries(STAGES.map((s) => [s, readStageInputs(runDir, s)])) as Record<StageName, StageInputs>;
  const finalEval: Partial<Record<JudgedModel, JudgeEval>> = {};
  for (const model of JUDGED_MODELS) {
    const result = readResultFile(join(runDir, FINAL_EVAL_DIR, `${model}.json`), judgeEvalSchema);
    if (result) finalEval[model] = result;
  }
  const safetyReward = readResultFile(join(runDir, SAFETY_REWARD_STAGE_DIR, STAGE_EVAL_FILE), rewardEvalSchema);
  return { runDir, name, stages, finalEval, safetyReward, roundsCount };
}
