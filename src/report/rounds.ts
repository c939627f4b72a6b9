/**
 * The iterative rounds in the report (runs/<name>/round_<k>/, written by src/pipeline/rounds.ts):
 * the judge score per round and stage (Llama 2 Fig 11 in miniature), each round's reward-model
 * accuracy on that round's held-out new pairs before and after retraining (staleness), and the
 * best-of-K curve of each round's rejection sampling (Fig 7).
 *
 *   round_<k>/eval/{rs,ppo}.json     JudgeEval
 *   round_<k>/reward_accuracy.json   {pairs, before, after}
 *   round_<k>/rs/best_of_k.json      {curve: [{k, reward_max, reward_median}], judge}
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { z } from 'zod';
import type { Block } from './document.js';
import { judgeEvalSchema, readResultFile } from './inputs.js';

const ROUND_MODELS = ['rs', 'ppo'] as const;
type RoundModel = (typeof ROUND_MODELS)[number];

const stalenessSchema = z.object({ pairs: z.number().int().min(0), before: z.number().nullable(), after: z.number().nullable() });
const bestOfKSchema = z.object({
  curve: z.array(z.object({ k: z.number().int().min(1), reward_max: z.number(), reward_median: z.number() })),
  judge: z.object({ best: z.number(), median: z.number(), first: z.number() }).nullable().default(null),
});

export interface RoundInputs {
  round: number;
  judge: Partial<Record<RoundModel, number>>;
  staleness: z.output<typeof stalenessSchema> | null;
  bestOfK: z.output<typeof bestOfKSchema> | null;
}

/** round_1, round_2, … as long as they exist. */
export function readRounds(runDir: string, count: number | null = null): RoundInputs[] {
  const rounds: RoundInputs[] = [];
  for (let k = 1; (count === null || k <= count) && existsSync(join(runDir, `round_${k}`)); k++) {
    const dir = join(runDir, `round_${k}`);
    const judge: RoundInputs['judge'] = {};
    for (const m of ROUND_MODELS) {
      const r = readResultFile(join(dir, 'eval', `${m}.json`), judgeEvalSchema);
      if (r) judge[m] = r.judge_score;
    }
    rounds.push({
      round: k,
      judge,
      staleness: readResultFile(join(dir, 'reward_accuracy.json'), stalenessSchema),
      bestOfK: readResultFile(join(dir, 'rs', 'best_of_k.json'), bestOfKSchema),
    });
  }
  return rounds;
}

/** The judge score along the run: the start, then each round's models in order, then GAtt. */
export function judgeTrajectory(rounds: readonly RoundInputs[], start: { label: string; judge: number | null }, gatt: number | null): Array<{ label: string; judge: number }> {
  const points: Array<{ label: string; judge: number | null }> = [start];
  for (const r of rounds) for (const m of ROUND_MODELS) if (r.judge[m] !== undefined) points.push({ label: `round ${r.round} ${m === 'rs' ? 'RS' : 'PPO'}`, judge: r.judge[m]! });
  points.push({ label: 'GAtt', judge: gatt });
  return points.filter((p): p is { label: string; judge: number } => p.judge !== null);
}

const pct = (x: number | null): string => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);

export function roundsBlocks(rounds: readonly RoundInputs[], trajectory: ReadonlyArray<{ label: string; judge: number }>): Block[] {
  if (rounds.length === 0) return [];
  const ks = [...new Set(rounds.flatMap((r) => r.bestOfK?.curve.map((c) => c.k) ?? []))].sort((a, b) => a - b);
  const blocks: Block[] = [
    { kind: 'heading', level: 2, text: 'Rounds' },
    { kind: 'paragraph', text: 'Judge score per round and stage, on the held-out prompts (Llama 2 Fig 11 in miniature):' },
    { kind: 'table', header: ['model', 'judge score'], rows: trajectory.map((p) => [p.label, p.judge.toFixed(3)]) },
    {
      kind: 'paragraph',
      text: "Reward-model accuracy on each round's held-out new pairs (sampled from the latest policy), before retraining (the previous round's reward model) and after:",
    },
    {
      kind: 'table',
      header: ['round', 'new pairs', 'before', 'after'],
      rows: rounds.map((r) => [String(r.round), String(r.staleness?.pairs ?? '–'), pct(r.staleness?.before ?? null), pct(r.staleness?.after ?? null)]),
    },
  ];
  if (ks.length > 0) {
    blocks.push(
      { kind: 'paragraph', text: 'Best of K in rejection sampling: mean over prompts of the maximum / median reward among K samples (Llama 2 Fig 7):' },
      {
        kind: 'table',
        header: ['round', ...ks.map((k) => `K=${k}`)],
        rows: rounds.map((r) => [
          String(r.round),
          ...ks.map((k) => {
            const c = r.bestOfK?.curve.find((x) => x.k === k);
            return c === undefined ? '–' : `${c.reward_max.toFixed(3)} / ${c.reward_median.toFixed(3)}`;
          }),
        ]),
      },
    );
  }
  return blocks;
}

/** Judge score along the rounds as a line. */
export function roundsJudgeSpec(trajectory: ReadonlyArray<{ label: string; judge: number }>, base: Record<string, unknown>): TopLevelSpec | null {
  if (trajectory.length < 2) return null;
  return {
    ...base,
    title: 'Judge score per round and stage',
    data: { values: trajectory.map((p, i) => ({ ...p, i })) },
    width: 320,
    height: 180,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'label', type: 'ordinal', sort: trajectory.map((p) => p.label), title: null, axis: { labelAngle: -30 } },
      y: { field: 'judge', type: 'quantitative', title: 'judge score', scale: { zero: false } },
    },
  } as TopLevelSpec;
}

/** Max and median reward against K, one panel per round. */
export function bestOfKSpec(rounds: readonly RoundInputs[], base: Record<string, unknown>): TopLevelSpec | null {
  const values = rounds.flatMap((r) =>
    (r.bestOfK?.curve ?? []).flatMap((c) => [
      { round: `round ${r.round}`, k: c.k, statistic: 'max', reward: c.reward_max },
      { round: `round ${r.round}`, k: c.k, statistic: 'median', reward: c.reward_median },
    ]),
  );
  if (values.length === 0) return null;
  return {
    ...base,
    title: 'Best of K: max and median reward',
    data: { values },
    facet: { column: { field: 'round', type: 'nominal', title: null } },
    spec: {
      width: 200,
      height: 160,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'k', type: 'quantitative', scale: { type: 'log', base: 2 }, axis: { values: [...new Set(values.map((v) => v.k))] }, title: 'K' },
        y: { field: 'reward', type: 'quantitative', title: 'reward' },
        color: { field: 'statistic', type: 'nominal', title: null },
      },
    },
  } as TopLevelSpec;
}
