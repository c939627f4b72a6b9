/**
 * One run per folder: the stage lock, against real other processes.
 *
 * The holder is a child `node` process running the lock module (transpiled with swc into a temp
 * folder), so "another run" is a real pid on this host, alive or killed with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { transformFileSync } from '@swc/core';
import { run as rlhf, type CliIo } from '../../src/cli/main.js';
import { initEngine } from '../../src/engine/index.js';
import type { GattConfig } from '../../src/gatt/config.js';
import { runGattSynthesis } from '../../src/gatt/recipe.js';
import { gattWiring } from '../../src/pipeline/stage-deps.js';
import { packagePath } from '../../src/paths.js';
import { LOCK_FILE, acquireRunLock, isStale, readRunLock } from '../../src/training/lock.js';
import { openStageRun } from '../../src/training/run.js';
import { makeTinyWorld, type TinyWorld } from '../sft/fixture.js';

let root: string;
let holderScript: string;
let world: TinyWorld;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  root = mkdtempSync(join(tmpdir(), 'run-lock-'));
  // The lock module and its one import, as plain ESM the child can run.
  const lib = join(root, 'lib');
  for (const [src, out] of [['src/training/lock.ts', 'training/lock.js'], ['src/errors.ts', 'errors.js']] as const) {
    const { code } = transformFileSync(packagePath(src), { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } });
    mkdirSync(dirname(join(lib, out)), { recursive: true });
    writeFileSync(join(lib, out), code);
  }
  writeFileSync(join(lib, 'package.json'), '{"type": "module"}\n');
  holderScript = join(lib, 'hold.js');
  writeFileSync(
    holderScript,
    "import { acquireRunLock } from './training/lock.js';\n" +
      "acquireRunLock(process.argv[2], 'sft');\n" +
      "process.stdout.write('held\\n');\n" +
      'setInterval(() => {}, 1000);\n',
  );
  world = await makeTinyWorld();
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(world.dir, { recursive: true, force: true });
});

/** A child process holding the lock on `dir`; resolves once it holds it. */
async function holder(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [holderScript, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && ok());
    child.on('exit', (code) => fail(new Error(`holder exited ${code}`)));
  });
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((ok) => child.on('exit', () => ok()));
  child.kill('SIGKILL');
  await exited;
}

async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const io: CliIo = { out: () => undefined, err: (t) => void (err += t + '\n'), debug: false };
  const code = await rlhf(argv, io);
  return { code, err };
}

/** `rlhf sft` on the tiny world into `out` (2 steps, no progress bar, no tracking). */
const sft = (out: string) =>
  cli(
    'sft', '--config', packagePath('configs', 'sft', 'tiny_lora.yaml'),
    `model.path=${world.modelDir}`, `data.train=${world.train}`, `data.eval=${world.eval}`, `output_dir=${out}`,
    'train.steps=2', 'tracking.enabled=false', 'engine.backend=cpu',
  );

/** Every file under `dir` with its bytes and mtime: "touched nothing" means this does not change. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out[p.slice(dir.length)] = `${s.mtimeMs} ${readFileSync(p, 'base64')}`;
    }
  };
  walk(dir);
  return out;
}

describe('stage folder lock', () => {
  test('a second `rlhf sft` into a held folder exits non-zero naming the holder, and touches nothing', async () => {
    const out = join(root, 'held');
    // An earlier run's leftovers that a fresh start would clear and a resume would trim.
    mkdirSync(join(out, 'checkpoints', 'step_1'), { recursive: true });
    writeFileSync(join(out, 'checkpoints', 'step_1', 'trainer_state.json'), '{"global_step": 1}\n');
    writeFileSync(join(out, 'metrics.jsonl'), '{"step": 1, "train/loss": 5}\n{"step": 2, "train/loss": 4}\n');
    const child = await holder(out);
    try {
      const before = listing(out);
      const lock = readRunLock(out)!;
      expect(lock).toMatchObject({ pid: child.pid, host: hostname(), stage: 'sft' });

      const r = await sft(out);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(`output_dir ${out}: another run is working in this folder`);
      expect(r.err).toContain(`sft run by pid ${child.pid} on this host (${hostname()}), started ${lock.started}`);
      expect(r.err).not.toMatch(/^\s+at /m); // no stack trace
      expect(listing(out)).toEqual(before);

      // The harness itself refuses the same way (every stage opens its run through it).
      await expect(openStageRun({
        stage: 'reward', outputDir: out, resolved: { stage: 'reward', config: {}, file: 'x.yaml', overrides: [] },
        tracking: { uri: 'none', experiment: 'Default', run_name: 't', enabled: false }, resume: 'auto',
      })).rejects.toThrow(`sft run by pid ${child.pid}`);
      expect(listing(out)).toEqual(before);
    } finally {
      await killHard(child);
    }
  });

  test('GAtt takes the lock before it reads or replaces anything in its folder', async () => {
    const out = join(root, 'gatt');
    mkdirSync(join(out, 'input_model'), { recursive: true });
    writeFileSync(join(out, 'input_model', 'config.json'), '{}\n');
    const child = await holder(out);
    try {
      const before = listing(out);
      // Only output_dir is read before the lock: the rest of the config is never reached.
      const resolved = { stage: 'gatt', config: { output_dir: out } as unknown as GattConfig, file: 'x.yaml', overrides: [] };
      await expect(runGattSynthesis(resolved, { ...gattWiring, log: () => undefined })).rejects.toThrow(`pid ${child.pid}`);
      expect(listing(out)).toEqual(before);
    } finally {
      await killHard(child);
    }
  });

  test('a lock left by a run killed with SIGKILL does not block the next run, which removes it when done', async () => {
    const out = join(root, 'killed');
    const child = await holder(out);
    await killHard(child);
    expect(readRunLock(out)).toMatchObject({ pid: child.pid }); // left behind
    expect(isStale(readRunLock(out)!)).toBe(true);

    const r = await sft(out);
    expect(r.err).not.toContain('another run is working');
    expect(r.code).toBe(0);
    expect(existsSync(join(out, 'final', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    expect(readdirSync(out).filter((n) => n.startsWith(LOCK_FILE))).toEqual([]); // no temp or stale copies either
  });
});

describe('lock records', () => {
  test('re-entrant within one process (GAtt runs the SFT recipe in its own folder); the file goes with the last release', () => {
    const out = join(root, 'reenter');
    const outer = acquireRunLock(out, 'gatt');
    const inner = acquireRunLock(join(out, '.', ''), 'sft');
    expect(readRunLock(out)).toMatchObject({ pid: process.pid, stage: 'gatt' });
    inner.release();
    inner.release(); // twice is harmless
    expect(existsSync(join(out, LOCK_FILE))).toBe(true);
    outer.release();
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  test('stale only when the holder is known to be gone: same host and a free or reused pid', () => {
    const alive = { pid: process.ppid, host: hostname(), started: '2026-01-01T00:00:00.000Z', stage: 'sft', proc_start: null };
    expect(isStale(alive)).toBe(false);
    // The pid now names a process that started at another time: the holder died and its pid was reused.
    expect(isStale({ ...alive, proc_start: '1' })).toBe(existsSync(`/proc/${process.ppid}/stat`));
    // Our own pid in a lock this process does not hold: left by an earlier process with the same pid.
    expect(isStale({ ...alive, pid: process.pid })).toBe(true);
    // Another host: cannot be checked, never taken over.
    expect(isStale({ ...alive, pid: 999_999_999, host: `not-${hostname()}` })).toBe(false);
  });

  test('a lock from another host is refused with the file to delete; a garbled one is taken over', () => {
    const out = join(root, 'remote');
    mkdirSync(out, { recursive: true });
    const path = join(out, LOCK_FILE);
    writeFileSync(path, JSON.stringify({ pid: 42, host: 'elsewhere', started: '2026-01-01T00:00:00.000Z', stage: 'ppo', proc_start: null }));
    expect(() => acquireRunLock(out, 'sft')).toThrow(
      `output_dir ${out}: another run is working in this folder: ppo run by pid 42 on host elsewhere, started 2026-01-01T00:00:00.000Z. ` +
        `Wait for it to end or choose another output_dir; if that run is gone, delete ${path}.`,
    );
    writeFileSync(path, '{"pid": 4');
    const lock = acquireRunLock(out, 'sft');
    expect(readRunLock(out)).toMatchObject({ pid: process.pid, stage: 'sft' });
    lock.release();
    expect(readdirSync(out)).toEqual([]);
  });
});
