/**
 * Crash tests of SFT training through the built CLI, in child `node` processes:
 *
 * - kill -9 at 20 moments in a row (half of them while a checkpoint is being written): after each
 *   kill every `checkpoints/step_<N>` folder is complete, `train.resume: auto` continues from the
 *   newest one, and the final adapter equals an uninterrupted run's, bit for bit;
 * - SIGINT / SIGTERM: the current step finishes, a checkpoint is written, exit 130 / 143;
 * - an output_dir that cannot be written, or a disk that is too small: a clear error before the
 *   first step, nothing half-written.
 *
 * The sources are compiled once (tsc into tmp/, inside the package so node_modules resolve).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { llamaConfig } from '../../src/model/config.js';
import { saveHfModel } from '../../src/model/io/hf.js';
import { readSafetensors } from '../../src/model/io/safetensors.js';
import { initLlama } from '../../src/model/llama.js';
import { loadTokenizer, trainTokenizer } from '../../src/tokenizer/index.js';
import { listCheckpoints } from '../../src/training/checkpoint.js';
import { checkpointSteps } from '../../src/training/run.js';

const REPO = process.cwd();
/** RLHF_TEST_BUILD: an already compiled tree to use as it is (e.g. to try a fix in dist/ first). */
const GIVEN_BUILD = process.env.RLHF_TEST_BUILD;
const BUILD = GIVEN_BUILD ?? join(REPO, 'tmp', `reliability-build-${process.pid}`);
const MAIN = join(BUILD, 'src', 'cli', 'main.js');
// Long enough that twenty kills (each up to ~1 s into a resumed run, at ~20 steps/s) land before the run ends.
const STEPS = 400;
const ADAPTER = 'adapter_model.safetensors';

let world: string;
let config: string;

const ANIMALS = ['cat', 'dog', 'cow', 'pig', 'owl', 'bee', 'hen', 'fox'];
const SOUNDS = ['meow', 'woof', 'moo', 'oink', 'hoot', 'buzz', 'cluck', 'yip'];
const dialogue = (i: number) =>
  JSON.stringify({
    messages: [
      { role: 'user', content: `What does a ${ANIMALS[i % 8]} say?` },
      { role: 'assistant', content: `A ${ANIMALS[i % 8]} says ${SOUNDS[i % 8]}.` },
    ],
  });

beforeAll(async () => {
  // tsc exits non-zero when another file in the tree has a type error; it still emits everything.
  if (!GIVEN_BUILD) spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', BUILD], { cwd: REPO });
  if (!existsSync(MAIN)) throw new Error(`build failed: no ${MAIN}`);

  await initEngine({ backend: 'cpu' });
  // Inside the package's tmp/ (a real disk, like a user's run folder), not a RAM-backed /tmp.
  mkdirSync(join(REPO, 'tmp'), { recursive: true });
  world = mkdtempSync(join(REPO, 'tmp', 'reliability-crash-'));
  const base = join(world, 'base');
  writeFileSync(join(world, 'corpus.txt'), (ANIMALS.map((a, i) => `What does a ${a} say? A ${a} says ${SOUNDS[i]}.`).join('\n') + '\n').repeat(10));
  await trainTokenizer({ corpusFiles: [join(world, 'corpus.txt')], vocabSize: 300, outDir: base });
  const tok = await loadTokenizer(base);
  const model = initLlama(
    llamaConfig({
      vocab_size: tok.vocabSize, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2,
      bos_token_id: tok.bosId, eos_token_id: tok.eosId, pad_token_id: tok.padId, initializer_range: 0.2,
    }),
    new Rng(3),
  );
  saveHfModel(model, base);
  model.dispose();
  writeFileSync(join(world, 'train.jsonl'), Array.from({ length: 16 }, (_, i) => dialogue(i)).join('\n') + '\n');
  writeFileSync(join(world, 'eval.jsonl'), [3, 5].map(dialogue).join('\n') + '\n');
  // LoRA with dropout (so the RNG state matters), a checkpoint after every step, the last 2 kept.
  config = join(world, 'sft.yaml');
  writeFileSync(
    config,
    [
      'stage: sft',
      'engine: {backend: cpu, seed: 0}',
      `tracking: {enabled: true, uri: ${join(world, 'mlruns')}}`,
      `model: {path: ${base}}`,
      `data: {train: ${join(world, 'train.jsonl')}, eval: ${join(world, 'eval.jsonl')}, eval_max_rows: 2, max_length: 24}`,
      'lora: {r: 2, alpha: 4, dropout: 0.1, target_modules: all-linear}',
      'optim: {lr: 0.01}',
      'schedule: {type: cosine, warmup_steps: 2}',
      `train: {steps: ${STEPS}, batch_size: 2, eval_every: 10}`,
      'checkpoint: {every_steps: 1, keep_last: 2}',
      '',
    ].join('\n'),
  );
}, 120_000);

afterAll(() => {
  for (const p of live) p.kill('SIGKILL'); // a failed test must not leave training running
  if (!GIVEN_BUILD) rmSync(BUILD, { recursive: true, force: true });
  if (world) rmSync(world, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

const live = new Set<ChildProcess>();

interface Child {
  proc: ChildProcess;
  output: () => string;
  done: Promise<Finished>;
}

/** `rlhf sft --config <world>/sft.yaml output_dir=<dir> ...overrides` in a child process. */
function startSft(outputDir: string, overrides: string[] = [], wrap?: (argv: string[]) => string[]): Child {
  const argv = [process.execPath, MAIN, 'sft', '--config', config, `output_dir=${outputDir}`, ...overrides];
  const [cmd, ...args] = wrap ? wrap(argv) : argv;
  const proc = spawn(cmd!, args, { cwd: world, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  let output = '';
  proc.stdout!.on('data', (d) => (output += String(d)));
  proc.stderr!.on('data', (d) => (output += String(d)));
  const done = new Promise<Finished>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, output })));
  return { proc, output: () => output, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve when `cond()` holds (polled every `everyMs`), or false once `child` has exited. */
async function waitFor(child: Child, cond: () => boolean, everyMs = 2): Promise<boolean> {
  let exited = false;
  void child.done.then(() => (exited = true));
  while (!exited) {
    if (cond()) return true;
    await sleep(everyMs);
  }
  return false;
}

function checkpointEntries(runDir: string): string[] {
  const root = join(runDir, 'checkpoints');
  return existsSync(root) ? readdirSync(root) : [];
}

/** Every `step_<N>` folder is a whole checkpoint: state for step N, both safetensors files readable. */
function expectOnlyCompleteCheckpoints(runDir: string): number[] {
  const steps: number[] = [];
  for (const name of checkpointEntries(runDir)) {
    const m = /^step_(\d+)$/.exec(name);
    if (!m) {
      expect(name).toMatch(/^\.tmp-/); // anything else is a temp folder, which resume ignores
      continue;
    }
    const dir = join(runDir, 'checkpoints', name);
    const state = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8')) as { global_step: number; rng_state: number[]; data_cursor: unknown };
    expect(state.global_step).toBe(Number(m[1]));
    expect(state.rng_state).toHaveLength(4);
    expect(state.data_cursor).toBeDefined();
    expect(readSafetensors(join(dir, ADAPTER)).tensors.size).toBeGreaterThan(0);
    expect(readSafetensors(join(dir, 'optimizer.safetensors')).tensors.size).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).peft_type).toBe('LORA');
    steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** The final adapter's tensors, by name. */
function finalAdapter(runDir: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of readSafetensors(join(runDir, 'final', ADAPTER)).tensors) out.set(name, t.data);
  return out;
}

/** step → train/loss from metrics.jsonl (one flat JSON object per line). */
function trainLosses(runDir: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as Record<string, number>;
    if (row['train/loss'] !== undefined) out.set(row.step!, row['train/loss']);
  }
  return out;
}

function expectSameAdapter(got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, w] of want) expect(Buffer.from(got.get(name)!.buffer).equals(Buffer.from(w.buffer))).toBe(true);
}

// ---------------------------------------------------------------------------------------------

let reference: { adapter: Map<string, Float32Array>; losses: Map<number, number> };

describe('SFT crash tests (child processes)', () => {
  test('an uninterrupted run (the reference)', async () => {
    const dir = join(world, 'ref');
    const r = await startSft(dir).done;
    expect(r.output).toContain(`sft done: ${STEPS} steps`);
    expect(r.code).toBe(0);
    reference = { adapter: finalAdapter(dir), losses: trainLosses(dir) };
    expect(reference.losses.size).toBe(STEPS);
  }, 180_000);

  test('kill -9 twenty times in a row (half during a checkpoint write): never a torn checkpoint; resume reaches the same weights', async () => {
    const dir = join(world, 'killed');
    const rng = new Rng(12);
    let duringWrite = 0;
    let resumes = 0;
    for (let kill = 0; kill < 20; kill++) {
      const before = listCheckpoints(dir).map((c) => c.step);
      const latest = before.length ? before[before.length - 1]! : 0;
      const child = startSft(dir);
      let reached: boolean;
      if (kill % 2 === 0) {
        // During a write: the moment the temp folder of the 2nd checkpoint this process writes
        // appears (or, should the write finish between two looks, right after it).
        reached = await waitFor(child, () =>
          checkpointEntries(dir).some((n) => {
            const m = /^(?:\.tmp-)?step_(\d+)$/.exec(n);
            return m !== null && Number(m[1]) >= latest + 2;
          }),
        );
      } else {
        // Anywhere: a random moment up to 0.8 s after the first step of this process.
        reached = await waitFor(child, () => /\[sft\] step \d+/.test(child.output()), 5);
        if (reached) await sleep(rng.uniform() * 800);
      }
      child.proc.kill('SIGKILL');
      const r = await child.done;
      expect(reached ? r.signal : `process ended first: ${r.output}`).toBe('SIGKILL');
      if (latest > 0) {
        expect(r.output).toContain(`resumed from ${join(dir, 'checkpoints', `step_${latest}`)} at step ${latest}`);
        resumes++;
      }

      const steps = expectOnlyCompleteCheckpoints(dir);
      if (checkpointEntries(dir).some((n) => n.startsWith('.tmp-step_'))) duringWrite++;
      // Progress is never lost: the newest checkpoint is at least the one this process resumed from.
      expect(steps.length === 0 ? 0 : steps[steps.length - 1]!).toBeGreaterThanOrEqual(latest);
      expect(existsSync(join(dir, 'final'))).toBe(false);
    }
    // The write-moment kills really landed inside a write (its temp folder was left behind).
    expect(duringWrite).toBeGreaterThanOrEqual(3);
    expect(resumes).toBeGreaterThanOrEqual(15);
    const reachedBeforeLastRun = checkpointSteps(dir).pop();

    const r = await startSft(dir).done;
    expect(r.code).toBe(0);
    expect(r.output).toContain(`sft done: ${STEPS} steps`);
    expectSameAdapter(finalAdapter(dir), reference.adapter);
    // metrics.jsonl holds each step once (rows past the resumed checkpoint were dropped), same losses.
    expect(trainLosses(dir)).toEqual(reference.losses);
    console.log(`kill -9: 20 kills, ${duringWrite} inside a checkpoint write, ${resumes} resumes, step ${reachedBeforeLastRun} of ${STEPS} reached before the last run`);
  }, 400_000);

  test('StopSignal.poll() sees a signal that `requested` alone misses inside a busy async loop', () => {
    // A child sends itself SIGTERM, then spins on settled promises like a training loop does.
    const script = `
      const { StopSignal } = await import(${JSON.stringify(join(BUILD, 'src/training/stop-signal.js'))});
      const stop = new StopSignal(process, () => {}, () => {});
      const early = await stop.poll(); // the loop is running (as it is after a first training step)
      process.kill(process.pid, 'SIGTERM');
      for (let i = 0; i < 10000; i++) await Promise.resolve();
      const before = stop.requested;
      const polled = await stop.poll();
      stop.dispose();
      console.log(JSON.stringify({ early, before, polled, signal: stop.signal }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ early: false, before: false, polled: true, signal: 'SIGTERM' });
  });

  // A signal handler only runs when the event loop gets a turn, which a step loop whose awaits
  // settle at once never gives it: the recipes check `await run.stop.poll()` after each step.
  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s: the current step finishes, a checkpoint is written, exit %i; resuming matches the reference', async (signal, exitCode) => {
    const dir = join(world, signal);
    // No periodic checkpoints: the one found afterwards is the signal's.
    const child = startSft(dir, ['checkpoint.every_steps=0']);
    expect(await waitFor(child, () => /\[sft\] step ([3-9]|\d\d)\//.test(child.output()), 5)).toBe(true);
    child.proc.kill(signal);
    const r = await child.done;
    expect(r.code).toBe(exitCode);
    const m = new RegExp(`${signal} received: stopped after step (\\d+), checkpoint written to (\\S+)\\.`).exec(r.output);
    expect(m).not.toBeNull();
    const step = Number(m![1]);
    expect(m![2]).toBe(join(dir, 'checkpoints', `step_${step}`));
    expect(expectOnlyCompleteCheckpoints(dir)).toEqual([step]);
    // The step in flight when the signal came was finished and logged: metrics end at `step`.
    expect(Math.max(...trainLosses(dir).keys())).toBe(step);
    expect(r.output).not.toMatch(/^\s+at /m);

    const resumed = await startSft(dir, ['checkpoint.every_steps=0']).done;
    expect(resumed.code).toBe(0);
    expect(resumed.output).toContain(`at step ${step}`);
    expectSameAdapter(finalAdapter(dir), reference.adapter);
  }, 180_000);

  // openStageRun makes the folder inside its checks (the folder lock first), so ENOTDIR becomes a UserError.
  test('an output_dir under a regular file: a clear error before training, nothing written', async () => {
    // Tests run as root, where chmod 0500 does not stop writes; a path below a file fails for anyone.
    const blocker = join(world, 'a-file');
    writeFileSync(blocker, 'not a folder\n');
    const dir = join(blocker, 'run');
    const r = await startSft(dir).done;
    expect(r.code).toBe(2);
    expect(r.output).toContain(`output_dir ${dir}: cannot write there`);
    expect(r.output).not.toMatch(/\[sft\] step/);
    expect(r.output).not.toMatch(/^\s+at /m);
    expect(readFileSync(blocker, 'utf8')).toBe('not a folder\n');
  }, 60_000);

  test('too little free disk: a clear error before training, no file left in the run folder', async () => {
    // An 8 KiB tmpfs in a private mount namespace (unshare: root, or user namespaces allowed).
    const mnt = join(world, 'small-disk');
    mkdirSync(mnt);
    const probe = spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=8k tmpfs ${mnt} && df -k ${mnt}`], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.warn(`skipped: cannot mount a small tmpfs here (${(probe.stderr || probe.error?.message || '').trim()})`);
      return;
    }
    const dir = join(mnt, 'run');
    const wrap = (argv: string[]) => [
      'unshare', '-rm', 'sh', '-c',
      `mount -t tmpfs -o size=8k tmpfs ${mnt} && "$0" "$@"; code=$?; find ${mnt} -mindepth 1 -type f | sed 's/^/left behind: /'; exit $code`,
      ...argv,
    ];
    const r = await startSft(dir, [], wrap).done;
    expect(r.code).toBe(2);
    expect(r.output).toMatch(new RegExp(`output_dir ${dir}: only [\\d.]+ KiB free on its disk, this run needs about [\\d.]+ (KiB|MiB)`));
    expect(r.output).not.toMatch(/\[sft\] step/);
    expect(r.output).not.toMatch(/^\s+at /m);
    // Every file on the small disk, listed from inside the namespace before it goes away: none.
    expect(r.output).not.toContain('left behind: ');
  }, 60_000);
});
