/**
 * Dataset throughput: validating a 100k-row Arrow file (target: under 10 s), the same rows as
 * JSONL, and best-fit-decreasing packing of 100k examples.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { writeRows } from '../src/data/records.js';
import { validateDataset } from '../src/data/validate.js';
import { packExamples } from '../src/data/packing.js';
import type { Bench } from './harness.js';

const WORDS = ['the', 'model', 'answers', 'a', 'question', 'about', 'weather', 'in', 'Paris', 'today', 'briefly', 'and', 'politely'];

function sentence(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]).join(' ');
}

/** SFT rows in the messages form: system, user, assistant, user, assistant. */
function sftRows(n: number, rng: Rng): Record<string, unknown>[] {
  return Array.from({ length: n }, () => ({
    messages: [
      { role: 'system', content: sentence(rng, 6) },
      { role: 'user', content: sentence(rng, 5 + rng.int(20)) },
      { role: 'assistant', content: sentence(rng, 10 + rng.int(40)) },
      { role: 'user', content: sentence(rng, 5 + rng.int(10)) },
      { role: 'assistant', content: sentence(rng, 10 + rng.int(40)) },
    ],
  }));
}

async function seconds(fn: () => Promise<unknown> | unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

export const bench: Bench = {
  name: 'data',
  description: 'validate a 100k-row Arrow / JSONL dataset; pack 100k examples',
  async run(ctx) {
    const n = ctx.quick ? 10_000 : 100_000;
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-bench-data-'));
    try {
      const rows = sftRows(n, new Rng(0));
      for (const ext of ['arrow', 'jsonl', 'parquet']) {
        const file = join(dir, `sft.${ext}`);
        const write = await seconds(() => writeRows(file, rows));
        let valid = 0;
        const validate = await seconds(async () => (valid = (await validateDataset(file, 'sft')).valid));
        if (valid !== n) throw new Error(`bench data: ${valid} of ${n} rows valid in ${file}`);
        ctx.emit({ name: `data validate ${n} rows`, metric: `${ext}_validate`, value: validate, unit: 's', backend: 'none', rows_per_s: Math.round(n / validate), target_s: ext === 'arrow' ? 10 : undefined });
        ctx.emit({ name: `data write ${n} rows`, metric: `${ext}_write`, value: write, unit: 's', backend: 'none' });
      }
      const rng = new Rng(1);
      const examples = Array.from({ length: n }, () => {
        const ids = Array.from({ length: 8 + rng.int(500) }, () => rng.int(4000));
        return { inputIds: ids, labels: ids };
      });
      let packedRows = 0;
      const pack = await seconds(() => (packedRows = packExamples(examples, { maxLength: 2048 }).length));
      const tokens = examples.reduce((s, e) => s + e.inputIds.length, 0);
      ctx.emit({ name: `data pack ${n} examples (max 2048)`, metric: 'pack', value: pack, unit: 's', backend: 'none', rows: packedRows, fill: Number((tokens / (packedRows * 2048)).toFixed(4)) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
