/**
 * `npm run bench [-- --json] [--filter NAME] [--backend wasm|cpu|tensorflow|auto] [--quick]`
 * Runs every `bench/*.ts` (compiled to dist/bench/*.js) that exports `bench: Bench`, in name order.
 * With --json: one JSON object per line per result; otherwise a plain table.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bench, BenchContext, BenchResult } from './harness.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const NOT_BENCHES = new Set(['run', 'harness']);

interface Args { json: boolean; filter: string | null; backend: BenchContext['backend']; quick: boolean }

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, filter: null, backend: 'wasm', quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') args.json = true;
    else if (a === '--quick') args.quick = true;
    else if (a === '--filter') args.filter = argv[++i] ?? null;
    else if (a === '--backend') args.backend = (argv[++i] ?? 'wasm') as Args['backend'];
    else throw new Error(`bench: unknown argument ${a} (use --json, --quick, --filter NAME, --backend NAME)`);
  }
  return args;
}

async function loadBenches(): Promise<Bench[]> {
  const files = readdirSync(HERE)
    .filter((f) => f.endsWith('.js') && !NOT_BENCHES.has(f.slice(0, -3)))
    .sort();
  const benches: Bench[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(HERE, f)).href)) as { bench?: Bench };
    if (mod.bench !== undefined) benches.push(mod.bench);
  }
  return benches;
}

function formatRow(r: BenchResult): string {
  const { name, model, metric, value, unit, backend, ...extra } = r;
  const rest = Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ');
  const shown = Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(4);
  return [(name ?? model ?? '').padEnd(42), metric.padEnd(14), `${shown} ${unit ?? ''}`.padEnd(16),
    backend.padEnd(8), rest].join(' ');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const benches = (await loadBenches()).filter((b) => args.filter === null || b.name.includes(args.filter));
  if (!args.json) console.log(['what'.padEnd(42), 'metric'.padEnd(14), 'value'.padEnd(16), 'backend'.padEnd(8), 'details'].join(' '));
  const ctx: BenchContext = {
    backend: args.backend,
    quick: args.quick,
    emit: (r) => console.log(args.json ? JSON.stringify(r) : formatRow(r)),
  };
  for (const b of benches) await b.run(ctx);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
