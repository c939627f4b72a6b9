import * as tf from '@tensorflow/tfjs-core';
import { EventEmitter } from 'node:events';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run as rlhf } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/index.js';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { injectLora, loraAdapters, unloadLora } from '../../src/lora/index.js';
import { loadHfModel } from '../../src/model/io/hf.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import type { LlamaModel } from '../../src/model/index.js';
import { packagePath } from '../../src/paths.js';
import { sftConfigSchema } from '../../src/sft/config.js';
import { runSft, type SftHooks } from '../../src/sft/recipe.js';
import { readMetricsJsonl } from '../../src/tracking/index.js';
import { StageStopped, checkpointSteps } from '../../src/training/run.js';
import { StopSignal } from '../../src/training/stop-signal.js';
import { makeTinyWorld, type TinyWorld } from './fixture.js';

/**
 * The recipe end to end on a 1-layer Llama (hidden 16, vocab 300) and 16 dialogues, on the wasm
 * backend (configs/sft/tiny_lora.yaml: 10 steps of batch 4, LoRA r=4 on all linear layers, dropout 0.1).
 */

let world: TinyWorld;
beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  world = await makeTinyWorld();
});
afterAll(() => rmSync(world.dir, { recursive: true, force: true }));

function config(outDir: string, overrides: string[] = []) {
  return loadConfig(
    packagePath('configs', 'sft', 'tiny_lora.yaml'),
    [`model.path=${world.modelDir}`, `data.train=${world.train}`, `data.eval=${world.eval}`, `output_dir=${join(world.dir, outDir)}`, ...overrides],
    { stage: 'sft', schema: sftConfigSchema },
  );
}

const quiet: SftHooks = { progress: false, log: () => undefined };

function fakeStop(): { proc: EventEmitter; stop: StopSignal } {
  const proc = new EventEmitter();
  return { proc, stop: new StopSignal(proc as unknown as ConstructorParameters<typeof StopSignal>[0], () => undefined, () => undefined) };
}

function snapshot(vars: Iterable<[string, tf.Variable]>): Map<string, Float32Array> {
  return new Map([...vars].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

function lossCurve(outDir: string): number[] {
  return readMetricsJsonl(join(world.dir, outDir, 'metrics.jsonl'))
    .filter((r) => r['train/loss'] !== undefined)
    .map((r) => r['train/loss']!);
}

function adapterTensors(outDir: string): Map<string, Float32Array> {
  const { tensors } = readSafetensors(join(world.dir, outDir, 'final', 'adapter_model.safetensors'));
  return new Map([...tensors].map(([n, t]) => [n, t.data]));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// Recorded from the first run of this recipe (wasm backend; the cpu backend agrees within 1e-6).
const EXPECTED_LOSSES = [5.865421, 5.937029, 5.759799, 5.392075, 5.258119, 5.022962, 4.927288, 4.844529, 4.775644, 4.781218];

describe('sft recipe on a tiny model', () => {
  test('10 LoRA steps: pinned loss curve that decreases, every adapter weight changed, base untouched, no leak', async () => {
    // The adapters' initial values: the recipe draws them first from Rng(engine.seed).
    const fresh = loadHfModel(world.modelDir);
    tf.tidy(() => void injectLora(fresh, { targetModules: 'all-linear', r: 4, alpha: 8, dropout: 0.1, rng: new Rng(0) }));
    const initial = new Map<string, Float32Array>();
    for (const [name, a] of loraAdapters(fresh)) {
      initial.set(`base_model.model.${name}.lora_A.weight`, (a.A.dataSync() as Float32Array).slice());
      initial.set(`base_model.model.${name}.lora_B.weight`, (a.B.dataSync() as Float32Array).slice());
    }
    unloadLora(fresh, { merge: false });
    const base = snapshot(fresh.params);
    fresh.dispose();

    const before = tf.memory().numTensors;
    let after: Map<string, Float32Array> | undefined;
    const result = await runSft(config('lora'), { ...quiet, beforeCleanup: (m: LlamaModel) => void (after = snapshot(m.params)) });
    expect(tf.memory().numTensors).toBe(before);

    const losses = result.losses.map((l) => l.loss);
    expect(losses).toHaveLength(10);
    losses.forEach((l, i) => expect(Math.abs(l - EXPECTED_LOSSES[i]!)).toBeLessThan(1e-4));
    expect(losses[9]!).toBeLessThan(losses[0]! - 0.5);
    expect(result.evalLoss).toBeLessThan(losses[0]!);
    expect(lossCurve('lora')).toEqual(losses);

    const trained = adapterTensors('lora');
    expect([...trained.keys()].sort()).toEqual([...initial.keys()].sort());
    expect(trained.size).toBe(14); // 7 projections × (A, B)
    for (const [name, init] of initial) {
      const now = trained.get(name)!;
      const changed = now.filter((v, i) => v !== init[i]).length;
      expect({ name, changed }).toEqual({ name, changed: now.length });
    }
    for (const [name, w] of base) expect({ name, diff: maxAbsDiff(after!.get(name)!, w) }).toEqual({ name, diff: 0 });

    const final = readdirSync(result.finalDir).sort();
    expect(final).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(checkpointSteps(result.outputDir)).toEqual([5, 10]);
  });

  test('data.train as a list of files is read as one set', async () => {
    const logs: string[] = [];
    const hooks: SftHooks = { progress: false, log: (m) => logs.push(m) };
    await runSft(config('list-one', ['train.steps=1', 'train.eval_every=0', 'checkpoint.every_steps=0']), hooks);
    await runSft(config('list-two', [`data.train=[${world.train}, ${world.train}]`, 'train.steps=1', 'train.eval_every=0', 'checkpoint.every_steps=0']), hooks);
    const counts = logs.map((l) => /(\d+) examples/.exec(l)?.[1]).filter((c) => c !== undefined).map(Number);
    expect(counts).toHaveLength(2);
    expect(counts[1]).toBe(2 * counts[0]!);
  });

  test('resume: SIGINT after step 5 writes a checkpoint and exits 130; resuming reproduces all 10 losses', async () => {
    const { proc, stop } = fakeStop();
    const stopAt5: SftHooks = { ...quiet, stopSignal: stop, onStep: (s) => void (s === 5 && proc.emit('SIGINT')) };
    // Checkpoints only on request, so the one at step 5 is the one the signal wrote.
    const overrides = ['checkpoint.every_steps=0'];
    const err = await runSft(config('resumed', overrides), stopAt5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageStopped);
    expect((err as StageStopped).exitCode).toBe(130);
    expect(checkpointSteps(join(world.dir, 'resumed'))).toEqual([5]);
    expect(existsSync(join(world.dir, 'resumed', 'final'))).toBe(false);
    expect(lossCurve('resumed')).toHaveLength(5);

    const rest = await runSft(config('resumed', overrides), quiet);
    expect(rest.losses.map((l) => l.step)).toEqual([6, 7, 8, 9, 10]);
    const resumed = lossCurve('resumed');
    expect(resumed).toHaveLength(10);
    resumed.forEach((l, i) => expect(Math.abs(l - EXPECTED_LOSSES[i]!)).toBeLessThan(1e-4));
    const uninterrupted = lossCurve('lora'); // from the test above
    resumed.forEach((l, i) => expect(Math.abs(l - uninterrupted[i]!)).toBeLessThan(1e-5));
    const a = adapterTensors('lora');
    for (const [name, t] of adapterTensors('resumed')) expect({ name, diff: maxAbsDiff(t, a.get(name)!) < 1e-5 }).toEqual({ name, diff: true });
  });

  test('accumulation: batch 2 × 4 micro-batches equals batch 8 in loss and updated weights', async () => {
    const common = ['train.steps=3', 'lora.dropout=0', 'train.eval_every=0', 'data.eval=null', 'checkpoint.every_steps=0'];
    const big = await runSft(config('batch8', [...common, 'train.batch_size=8', 'optim.grad_accum=1']), quiet);
    const small = await runSft(config('batch2x4', [...common, 'train.batch_size=2', 'optim.grad_accum=4']), quiet);
    expect(small.losses.map((l) => l.step)).toEqual([1, 2, 3]);
    small.losses.forEach((l, i) => expect(Math.abs(l.loss - big.losses[i]!.loss)).toBeLessThan(1e-5));
    const a = adapterTensors('batch8');
    for (const [name, t] of adapterTensors('batch2x4')) expect({ name, diff: maxAbsDiff(t, a.get(name)!) < 1e-5 }).toEqual({ name, diff: true });
    // And the comparison is not vacuous: the weights did move.
    expect(maxAbsDiff(a.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!, new Float32Array(64))).toBeGreaterThan(1e-3);
  });

  test('non-finite losses: skipped, then abort with a clear message; the last good checkpoint stays', async () => {
    const err = await runSft(
      config('diverge', ['optim.lr=1e30', 'optim.grad_clip=null', 'train.steps=6', 'checkpoint.every_steps=1', 'train.max_nonfinite=2', 'train.eval_every=0']),
      quiet,
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/training diverged: 2 steps in a row had a non-finite loss or gradient/);
    const rows = readMetricsJsonl(join(world.dir, 'diverge', 'metrics.jsonl'));
    const finite = rows.filter((r) => Number.isFinite(r['train/loss']));
    expect(finite.length).toBeGreaterThanOrEqual(1);
    expect(rows[rows.length - 1]!['train/skipped_nonfinite']).toBe(1); // the second skip aborts before logging
    expect(checkpointSteps(join(world.dir, 'diverge')).length).toBeGreaterThan(0);
    expect(existsSync(join(world.dir, 'diverge', 'final'))).toBe(false);
  });

  test('rlhf sft: full fine-tuning writes a loadable HF model with tokenizer files; every weight moved', async () => {
    const io = { out: () => undefined, err: (s: string) => void errors.push(s), debug: false };
    const errors: string[] = [];
    const log = console.log;
    console.log = () => undefined;
    const stderr = process.stderr.write.bind(process.stderr);
    const stdout = process.stdout.write.bind(process.stdout);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    let code: number;
    try {
      code = await rlhf(
        ['sft', '--config', packagePath('configs', 'sft', 'tiny_lora.yaml'), `model.path=${world.modelDir}`, `data.train=${world.train}`,
          `data.eval=${world.eval}`, `output_dir=${join(world.dir, 'full')}`, 'lora.enabled=false', 'train.steps=2', 'optim.lr=1e-2'],
        io,
      );
    } finally {
      console.log = log;
      process.stderr.write = stderr;
      process.stdout.write = stdout;
    }
    expect(errors).toEqual([]);
    expect(code).toBe(0);
    const final = join(world.dir, 'full', 'final');
    expect(readdirSync(final).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const tuned = loadHfModel(final);
    const base = loadHfModel(world.modelDir);
    for (const [name, v] of base.params) {
      expect({ name, moved: maxAbsDiff(v.dataSync(), tuned.params.get(name)!.dataSync()) > 0 }).toEqual({ name, moved: true });
    }
    tuned.dispose();
    base.dispose();
  });
});
