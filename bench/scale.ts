/**
 * Load and generation figures of a real-size model folder (issue 16), the ones
 * `bench/reference_peft.py` reports for transformers on the same folder:
 *
 *   node dist/bench/scale.js DIR [--frozen-dtype bfloat16] [--on-heap]
 *
 * Loaded as `rlhf generate` loads: weights frozen in float32, mapped from the file (`--on-heap`: every
 * weight copied onto the tensor heap as a variable, the training stages' load).
 *
 *   load_first_token_s  loadHfModel + the first greedy token of one 32-token prompt
 *   generate_tok_s      greedy, batch 8, 32-token prompts, 64 new tokens (KV cache), after a warm-up
 *   peak_rss_mb         peak RSS of this process
 * One JSON line each. LoRA SFT tokens/s comes from the `rlhf sft` command of docs/engine.md.
 * Not part of `npm run bench` (it needs a folder from `node dist/bench/shapes.js`).
 */
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/engine/index.js';
import { Rng } from '../src/engine/rng.js';
import { generate } from '../src/generation/generate.js';
import { loadHfModel } from '../src/model/io/hf.js';

const GEN = { batch: 8, promptLen: 32, newTokens: 64 };

function randomPrompts(rng: Rng, rows: number, len: number, vocab: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: len }, () => rng.int(vocab)));
}

async function main(argv: string[]): Promise<void> {
  const dir = argv[0];
  if (dir === undefined) throw new Error('usage: node dist/bench/scale.js DIR [--frozen-dtype bfloat16] [--on-heap]');
  const frozenDtype = argv.includes('--frozen-dtype') ? (argv[argv.indexOf('--frozen-dtype') + 1] as 'float32' | 'bfloat16') : 'float32';
  const frozenFloat32 = !argv.includes('--on-heap');
  const engine = await initEngine({ backend: 'auto' });
  const emit = (metric: string, value: number) =>
    console.log(JSON.stringify({ model: dir, metric, value: Number(value.toFixed(3)), backend: engine.backend, frozen_dtype: frozenDtype, weights: frozenDtype === 'bfloat16' ? 'frozen bf16' : frozenFloat32 ? 'frozen f32 (mapped)' : 'heap' }));
  const rng = new Rng(0);

  let started = performance.now();
  const model = loadHfModel(dir, { frozenDtype, frozenFloat32 });
  const vocab = model.config.vocab_size;
  const greedy = { temperature: 0, stopTokenIds: [] as number[], rng };
  generate(model, randomPrompts(rng, 1, GEN.promptLen, vocab), { ...greedy, maxNewTokens: 1 });
  emit('load_first_token_s', (performance.now() - started) / 1000);

  const prompts = randomPrompts(rng, GEN.batch, GEN.promptLen, vocab);
  generate(model, prompts, { ...greedy, maxNewTokens: 4 }); // warm-up
  started = performance.now();
  generate(model, prompts, { ...greedy, maxNewTokens: GEN.newTokens, minNewTokens: GEN.newTokens });
  emit('generate_tok_s', (GEN.batch * GEN.newTokens) / ((performance.now() - started) / 1000));
  emit('peak_rss_mb', process.resourceUsage().maxRSS / 1024);
  model.dispose();
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
