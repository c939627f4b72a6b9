/**
 * The margin ablation of Llama 2 Table 28 on the world's preference data: the same reward model
 * trained three times — no margin, small margin, large margin (Table 27) — and scored on the
 * held-out pairs, accuracy per preference level. Not part of `npm run bench` (each run trains a
 * reward model for minutes, so it lives in scripts/, not bench/); run it on its own:
 *
 *   npm run build && node dist/scripts/reward_margin_ablation.js [--config reward/world] [--runs DIR] [--out FILE.json] [k=v ...]
 *
 * Extra `k=v` overrides apply to all three runs (e.g. model.path=data/world/base train.steps=200).
 * Run i writes to <--runs, default runs/ablation>/reward_margin_<kind>/. Prints the Markdown table
 * and writes the numbers as JSON to --out (default: stdout, after the table).
 */
import { writeFileSync } from 'node:fs';
import { findConfig, loadConfig } from '../src/config/index.js';
import { STRENGTHS, type Strength } from '../src/data/schemas.js';
import { rewardConfigSchema } from '../src/reward/config.js';
import type { PairEvaluation } from '../src/reward/evaluate.js';
import { runReward } from '../src/reward/recipe.js';

const KINDS = ['none', 'small', 'large'] as const;
const HEADERS: Record<Strength, string> = {
  significantly_better: 'Significantly Better',
  better: 'Better',
  slightly_better: 'Slightly Better',
  negligibly_better: 'Negligibly Better / Unsure',
};

interface AblationRow {
  margin: (typeof KINDS)[number];
  accuracy: number;
  byStrength: PairEvaluation['byStrength'];
  seconds: number;
}

function parseArgs(argv: string[]): { config: string; runs: string; out: string | null; overrides: string[] } {
  let config = 'reward/world';
  let runs = 'runs/ablation';
  let out: string | null = null;
  const overrides: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config') config = argv[++i]!;
    else if (argv[i] === '--out') out = argv[++i]!;
    else if (argv[i] === '--runs') runs = argv[++i]!;
    else overrides.push(argv[i]!);
  }
  return { config, runs, out, overrides };
}

/** Table 28's layout: one row per margin, one column per preference level, then the average. */
function ablationTable(rows: readonly AblationRow[]): string {
  const pct = (x: number | undefined) => (x === undefined ? '–' : (100 * x).toFixed(1));
  const lines = [
    `| margin | ${STRENGTHS.map((s) => HEADERS[s]).join(' | ')} | Avg |`,
    `| --- | ${STRENGTHS.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const r of rows) lines.push(`| ${r.margin} | ${STRENGTHS.map((s) => pct(r.byStrength[s]?.accuracy)).join(' | ')} | ${pct(r.accuracy)} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const file = findConfig(args.config);
  const rows: AblationRow[] = [];
  for (const margin of KINDS) {
    // The margin and the run folder come last: they are what differs between the three runs.
    const overrides = ['tracking.enabled=false', ...args.overrides, `reward.margin=${margin}`, `output_dir=${args.runs}/reward_margin_${margin}`];
    const resolved = loadConfig(file, overrides, { stage: 'reward', schema: rewardConfigSchema });
    const start = Date.now();
    const result = await runReward(resolved, { log: (m) => process.stderr.write(`[${margin}] ${m}\n`), progressStream: process.stderr });
    if (!result.eval) throw new Error('the ablation needs held-out pairs (data.eval or data.eval_fraction)');
    rows.push({ margin, accuracy: result.eval.accuracy, byStrength: result.eval.byStrength, seconds: (Date.now() - start) / 1000 });
  }
  const pairsPer = Object.fromEntries(STRENGTHS.map((s) => [s, rows[0]!.byStrength[s]?.pairs ?? 0]));
  console.log(ablationTable(rows));
  console.log(`\nheld-out pairs per level: ${STRENGTHS.map((s) => `${HEADERS[s]} ${pairsPer[s]}`).join(', ')}`);
  const json = JSON.stringify({ config: file, overrides: args.overrides, rows }, null, 2);
  if (args.out) writeFileSync(args.out, json + '\n');
  else console.log(json);
}

await main();
