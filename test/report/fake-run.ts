/** A run folder with the files stages write, filled with fixed numbers (no training). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeJson(path: string, value: unknown): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2));
}

export function writeMetrics(dir: string, rows: Array<Record<string, number>>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r, i) => JSON.stringify({ step: i + 1, timestamp: 1000 + i, ...r })).join('\n') + '\n');
}

/** sft, reward, ppo and gatt finished; pretrain not run (a shipped base). */
export function writeFakeRun(runDir: string, opts: { withGatt?: boolean } = {}): void {
  const finished = (stage: string) => mkdirSync(join(runDir, stage, 'final'), { recursive: true });
  writeMetrics(join(runDir, 'sft'), [{ 'train/loss': 3 }, { 'train/loss': 2.5, 'eval/loss': 2.8 }, { 'train/loss': 2 }, { 'train/loss': 1.5, 'eval/loss': 2.1 }]);
  writeJson(join(runDir, 'sft', 'eval.json'), {
    judge_score: 0.4,
    by_family: { arithmetic: 0.5, compare: 0.3 },
    samples: [{ prompt: 'What is 2 + 2?', completion: 'It is <4> | four.', score: 1 }],
  });
  finished('sft');
  writeMetrics(join(runDir, 'reward'), [
    { loss: 0.69, accuracy: 0.5 },
    { loss: 0.6, accuracy: 0.6 },
    { loss: 0.5, 'eval/accuracy': 0.7, 'eval/accuracy_by_strength/significantly_better': 0.9, 'eval/accuracy_by_strength/better': 0.6 },
  ]);
  writeJson(join(runDir, 'reward', 'eval.json'), {
    accuracy: 0.75,
    accuracy_by_strength: { slightly_better: 0.6, significantly_better: 0.95, better: 0.8, negligibly_better: 0.52 },
  });
  finished('reward');
  writeMetrics(join(runDir, 'ppo'), [
    { 'objective/scores': 0.1, 'objective/kl': 0 },
    { 'objective/scores': 0.3, 'objective/kl': 0.02, 'eval/judge_score': 0.45 },
    { 'objective/scores': 0.5, 'objective/kl': 0.05, 'eval/judge_score': 0.5 },
  ]);
  finished('ppo');
  writeJson(join(runDir, 'eval', 'base.json'), { judge_score: 0.1, by_family: { arithmetic: 0.2 }, samples: [] });
  writeJson(join(runDir, 'eval', 'ppo.json'), {
    judge_score: 0.55,
    by_family: { arithmetic: 0.6, compare: 0.5 },
    samples: [{ prompt: 'Which is larger, a dog or an owl?', completion: 'A dog.\nYes.', score: 0.9 }],
  });
  if (opts.withGatt !== false) {
    writeMetrics(join(runDir, 'gatt'), [{ 'train/loss': 1.2 }, { 'train/loss': 1.0 }]);
    writeJson(join(runDir, 'gatt', 'adherence.json'), {
      turns: [1, 2, 3],
      with_gatt: { all: [1, 0.9, 0.85] },
      without_gatt: { all: [0.95, 0.5, 0.2] },
    });
    finished('gatt');
  }
}
