/**
 * Training and generation throughput of the two bench models (issue 11), the numbers a user compares
 * with PyTorch (`bench/reference_torch.py`, side by side in `npm run bench:compare`):
 *   train_full_tok_s  — forward + backward + AdamW step over every weight, batch 8 × the model's seq
 *   train_lora8_tok_s — the same with LoRA r = 8 (alpha 16, no dropout) on every linear, base frozen (an SFT step)
 *   dpo_lora8_tok_s   — a DPO step on the same 8 × seq tokens (4 pairs, chosen and rejected rows; reply = the
 *                       second half): reference forward with adapters off, policy forward + backward of the
 *                       sigmoid loss on summed reply log-probs, AdamW — the `rlhf dpo` LoRA step
 *   generate_tok_s    — batch 16, 16-token prompts, 64 new tokens, KV cache, temperature 1
 *   peak_rss_mb       — peak resident memory of a process doing the LoRA step (target: < 1 GiB on small)
 *   peak_tfjs_mb      — peak bytes TF.js counted during one such step (tf.profile's peakBytes). TF.js
 *                       counts every tensor's bytes, also tensors that share data (reshapes, saved
 *                       activations, clones), so this is an upper bound; peak RSS is the real figure.
 * Each job runs in its own child process, so every peak RSS is that job's alone (the wasm heap
 * never shrinks, and a process's peak RSS never goes down).
 *
 * Per-kernel profile of one step (which kernels dominate), printed as a table:
 *   node dist/bench/train.js --profile small train_full|train_lora8|dpo_lora8|generate
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine/index.js';
import { Rng } from '../src/engine/rng.js';
import { generate } from '../src/generation/generate.js';
import { dpoLossSum, sequenceLogps } from '../src/dpo/loss.js';
import { injectLora, trainableVariables, withAdaptersDisabled } from '../src/lora/inject.js';
import { initLlama, type LlamaModel } from '../src/model/llama.js';
import { AdamW } from '../src/training/adamw.js';
import { microBatchGrads } from '../src/training/accumulation.js';
import { maskedCrossEntropySum, shiftLabels } from '../src/training/loss.js';
import { timePerCall, type Bench, type BenchContext } from './harness.js';
import { BENCH_MODELS } from './model.js';

type JobKind = 'train_full' | 'train_lora8' | 'dpo_lora8' | 'generate';

interface Job {
  model: 'tiny' | 'small';
  kind: JobKind;
  backend: 'wasm' | 'cpu' | 'tensorflow';
  quick: boolean;
}

interface JobResult {
  tokS: number;
  peakRssMb: number;
  peakTfjsMb: number;
}

export const TRAIN_BATCH = 8;
export const LORA = { r: 8, alpha: 16, targetModules: 'all-linear' } as const;
export const GEN = { batch: 16, promptLen: 16, newTokens: 64, temperature: 1 } as const;
const LR = 1e-4;

function randomIds(rng: Rng, rows: number, cols: number, vocab: number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => rng.int(vocab)));
}

/** One optimizer step's work, set up for `kind`; `step()` does it and syncs on the loss. */
function trainer(model: LlamaModel, kind: 'train_full' | 'train_lora8', seq: number, rng: Rng): { step: () => void; dispose: () => void } {
  const vocab = model.config.vocab_size;
  if (kind === 'train_lora8') injectLora(model, { ...LORA, rng });
  const variables = kind === 'train_lora8' ? trainableVariables(model) : model.params;
  const optimizer = new AdamW(variables);
  const ids = randomIds(rng, TRAIN_BATCH, seq, vocab);
  const inputIds = tf.tensor2d(ids, undefined, 'int32');
  const labels = tf.tensor2d(shiftLabels(ids), undefined, 'int32');
  const targets = TRAIN_BATCH * (seq - 1);
  const step = (): void => {
    const { grads } = microBatchGrads(variables, () => {
      const out = model.forward({ inputIds, training: true });
      return maskedCrossEntropySum(out.logits, labels).sum;
    }, targets);
    optimizer.step(grads, LR);
    tf.dispose([...grads.values()]);
  };
  return { step, dispose: () => { optimizer.dispose(); tf.dispose([inputIds, labels]); } };
}

/**
 * One DPO step (as `rlhf dpo` with LoRA): rows 0..3 are the chosen sides, 4..7 the rejected ones, the
 * reply is each row's second half; the reference is the same model with adapters off.
 */
function dpoTrainer(model: LlamaModel, seq: number, rng: Rng): { step: () => void; dispose: () => void } {
  const vocab = model.config.vocab_size;
  injectLora(model, { ...LORA, rng });
  const variables = trainableVariables(model);
  const optimizer = new AdamW(variables);
  const ids = randomIds(rng, TRAIN_BATCH, seq, vocab);
  const inputIds = tf.tensor2d(ids, undefined, 'int32');
  const labels = shiftLabels(ids.map((row) => row.map((y, t) => (t < seq / 2 ? -100 : y))));
  const pairs = TRAIN_BATCH / 2;
  const replyLen = labels[0]!.filter((y) => y !== -100).length;
  const settings = { beta: 0.1, labelSmoothing: 0, lossTypes: ['sigmoid'] as const, lossWeights: [1] };
  const step = (): void => {
    const refT = tf.tidy(() => withAdaptersDisabled(model, () => sequenceLogps(model.forward({ inputIds }).logits as tf.Tensor3D, labels).logps));
    const ref = Array.from(refT.dataSync());
    refT.dispose();
    const { grads } = microBatchGrads(variables, () => {
      const { logps } = sequenceLogps(model.forward({ inputIds, training: true }).logits as tf.Tensor3D, labels); // [8]
      const [chosen, rejected] = tf.split(logps, [pairs, pairs]) as [tf.Tensor1D, tf.Tensor1D];
      const lengths = new Array<number>(pairs).fill(replyLen);
      return dpoLossSum(
        { chosen, rejected, refChosen: tf.tensor1d(ref.slice(0, pairs)), refRejected: tf.tensor1d(ref.slice(pairs)), chosenLengths: lengths, rejectedLengths: lengths },
        settings,
        { pairs, chosenTokens: pairs * replyLen },
      );
    }, 1);
    optimizer.step(grads, LR);
    tf.dispose([...grads.values()]);
  };
  return { step, dispose: () => { optimizer.dispose(); inputIds.dispose(); } };
}

/** Runs in the child process: one job, measured. */
async function runJob(job: Job): Promise<JobResult> {
  await initEngine({ backend: job.backend });
  const spec = BENCH_MODELS.find((m) => m.name === job.model)!;
  const rng = new Rng(1);
  const model = initLlama(spec.config, rng);
  let tokS: number;
  let peakTfjs = 0;
  if (job.kind === 'generate') {
    const prompts = randomIds(rng, GEN.batch, GEN.promptLen, spec.config.vocab_size);
    const newTokens = job.quick ? 8 : GEN.newTokens;
    const run = (): unknown => generate(model, prompts, { maxNewTokens: newTokens, temperature: GEN.temperature, stopTokenIds: [], rng });
    const ms = await timePerCall(run, { warmup: 1, minMs: 0, minIters: job.quick ? 1 : 3 });
    tokS = (GEN.batch * newTokens) / (ms / 1000);
    peakTfjs = (await tf.profile(() => { run(); })).peakBytes;
  } else {
    const t = job.kind === 'dpo_lora8' ? dpoTrainer(model, spec.seq, rng) : trainer(model, job.kind, spec.seq, rng);
    const ms = await timePerCall(t.step, { warmup: 1, minMs: job.quick ? 0 : 4000, minIters: job.quick ? 1 : 3 });
    tokS = (TRAIN_BATCH * spec.seq) / (ms / 1000);
    peakTfjs = (await tf.profile(t.step)).peakBytes;
    t.dispose();
  }
  model.dispose();
  return { tokS, peakRssMb: process.resourceUsage().maxRSS / 1024, peakTfjsMb: peakTfjs / 2 ** 20 };
}

/** Per-kernel time of one step (after a warm-up step), largest first, to stdout. */
async function profileJob(job: Job): Promise<void> {
  await initEngine({ backend: job.backend });
  const spec = BENCH_MODELS.find((m) => m.name === job.model)!;
  const rng = new Rng(1);
  const model = initLlama(spec.config, rng);
  let work: () => unknown;
  if (job.kind === 'generate') {
    const prompts = randomIds(rng, GEN.batch, GEN.promptLen, spec.config.vocab_size);
    work = () => generate(model, prompts, { maxNewTokens: GEN.newTokens, temperature: GEN.temperature, stopTokenIds: [], rng });
  } else {
    work = (job.kind === 'dpo_lora8' ? dpoTrainer(model, spec.seq, rng) : trainer(model, job.kind, spec.seq, rng)).step;
  }
  work();
  const start = performance.now();
  const info = await tf.profile(() => { work(); });
  const wall = performance.now() - start;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const key = k.name === 'BatchMatMul' ? `BatchMatMul ${matMulKind(k.inputShapes)}` : k.name;
    const e = byKernel.get(key) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    byKernel.set(key, e);
  }
  const kernelMs = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`${job.model} ${job.kind}: wall ${wall.toFixed(0)} ms (profiled), kernels ${kernelMs.toFixed(0)} ms, ` +
    `${info.kernels.length} kernel calls, peak ${(info.peakBytes / 2 ** 20).toFixed(0)} MiB`);
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    console.log(`${name.padEnd(44)} ${e.ms.toFixed(1).padStart(9)} ms ${(100 * e.ms / wall).toFixed(1).padStart(5)}%  ${e.calls} calls`);
  }
}

/** Small products vs big ones, so the profile tells FFI/dispatch cost from arithmetic. */
function matMulKind(shapes: number[][]): string {
  const [a] = shapes;
  const rows = a === undefined ? 0 : a.slice(0, -1).reduce((x, y) => x * y, 1);
  return rows <= 64 ? '(≤64 rows)' : '(large)';
}

function runChild(job: Job): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)],
      { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`bench train: ${job.model} ${job.kind} failed: ${stderr || err.message}`));
          return;
        }
        const last = stdout.trim().split('\n').pop() ?? '';
        resolve(JSON.parse(last) as JobResult);
      });
  });
}

async function runAll(ctx: BenchContext): Promise<void> {
  const backend = ctx.backend === 'auto' ? 'wasm' : ctx.backend;
  const info = await initEngine({ backend });
  const blas = info.matmul?.path === 'blas' ? `${info.matmul.vendor}x${info.matmul.threads ?? '?'}` : 'off';
  for (const spec of BENCH_MODELS) {
    const seq = spec.seq;
    for (const kind of ['train_full', 'train_lora8', 'dpo_lora8', 'generate'] as const) {
      const r = await runChild({ model: spec.name, kind, backend, quick: ctx.quick });
      const shape = kind === 'generate'
        ? { batch: GEN.batch, prompt: GEN.promptLen, new_tokens: ctx.quick ? 8 : GEN.newTokens }
        : kind === 'dpo_lora8' ? { batch: TRAIN_BATCH, seq, pairs: TRAIN_BATCH / 2 } : { batch: TRAIN_BATCH, seq };
      ctx.emit({ model: spec.name, metric: `${kind}_tok_s`, value: r.tokS, unit: 'tok/s', backend, blas, ...shape,
        rss_mb: Math.round(r.peakRssMb), tfjs_mb: Math.round(r.peakTfjsMb) });
      if (kind === 'train_lora8') {
        ctx.emit({ model: spec.name, metric: 'peak_rss_mb', value: r.peakRssMb, unit: 'MiB', backend, during: kind });
        ctx.emit({ model: spec.name, metric: 'peak_tfjs_mb', value: r.peakTfjsMb, unit: 'MiB', backend, during: kind });
      }
    }
  }
}

export const bench: Bench = {
  name: 'train',
  description: 'training (full, LoRA r=8, DPO LoRA r=8) and generation tokens/s, peak RSS and TF.js bytes, tiny and small models',
  run: runAll,
};

// Child-process entry (and the profiler); importing this module from bench/run.ts runs nothing.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === '--child') {
    const result = await runJob(JSON.parse(rest[0]!) as Job);
    console.log(JSON.stringify(result));
  } else if (mode === '--profile') {
    const [model = 'small', kind = 'train_full'] = rest;
    await profileJob({ model: model as Job['model'], kind: kind as JobKind, backend: 'wasm', quick: false });
  } else {
    console.error('usage: node dist/bench/train.js --profile tiny|small train_full|train_lora8|dpo_lora8|generate (the bench itself: npm run bench -- --filter train)');
    process.exit(2);
  }
}
