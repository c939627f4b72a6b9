import * as tf from '@tensorflow/tfjs-core';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initEngine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/rng.js';
import { UserError } from '../../src/errors.js';
import { AdamW } from '../../src/training/adamw.js';
import { StopSignal } from '../../src/training/stop-signal.js';
import {
  RESOLVED_CONFIG_FILE,
  StageStopped,
  checkpointSteps,
  closeStatusFor,
  openStageRun,
  prepareRunDir,
  resolveResume,
  restoreStageCheckpoint,
  runDiskBytes,
  saveStageCheckpoint,
  trimMetricsAfter,
  variableWeights,
  writeFolderAtomic,
} from '../../src/training/run.js';

let root: string;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'stage-run-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const resolved = { stage: 'sft', config: { optim: { lr: 0.001 }, train: { steps: 4 } }, file: 'x.yaml', overrides: [] };
const tracking = { uri: 'none', experiment: 'Default', run_name: 'test', enabled: false };

/** A StopSignal listening to a fake process, so tests can "send" signals. */
function fakeSignal(): { proc: EventEmitter; stop: StopSignal } {
  const proc = new EventEmitter();
  const stop = new StopSignal(
    proc as unknown as ConstructorParameters<typeof StopSignal>[0],
    () => undefined,
    () => undefined,
  );
  return { proc, stop };
}

describe('run folder', () => {
  test('prepareRunDir refuses an unwritable place and too little free disk, naming the folder', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    expect(() => prepareRunDir(join(file, 'sub'))).toThrow(/output_dir .*a-file\/sub: cannot write there/);
    expect(() => prepareRunDir(join(root, 'ok'), { minFreeBytes: 2 ** 60 })).toThrow(/only .* free on its disk, this run needs about 1048576\.0 TiB/);
    prepareRunDir(join(root, 'ok'), { minFreeBytes: 1 });
    expect(readdirSync(join(root, 'ok'))).toEqual([]); // the probe is gone
  });

  test('writeFolderAtomic replaces a folder whole, and leaves it as it was when writing fails', () => {
    const dir = join(root, 'final');
    writeFolderAtomic(dir, (tmp) => writeFileSync(join(tmp, 'a.txt'), 'one'));
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('one');
    expect(() =>
      writeFolderAtomic(dir, (tmp) => {
        writeFileSync(join(tmp, 'a.txt'), 'two');
        throw new Error('disk full');
      }),
    ).toThrow('disk full');
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('one');
    writeFolderAtomic(dir, (tmp) => writeFileSync(join(tmp, 'b.txt'), 'three'));
    expect(readdirSync(dir)).toEqual(['b.txt']);
    expect(readdirSync(root)).toEqual(['final']); // no temp folders left behind
  });

  test('trimMetricsAfter drops rows past the checkpoint and a torn last line', () => {
    const path = join(root, 'metrics.jsonl');
    writeFileSync(path, '{"step":1,"timestamp":0,"loss":3}\n{"step":2,"timestamp":0,"loss":2}\n{"step":3,"timestamp":0,"loss":1}\n{"step":4,"ti');
    trimMetricsAfter(root, 2);
    expect(readFileSync(path, 'utf8')).toBe('{"step":1,"timestamp":0,"loss":3}\n{"step":2,"timestamp":0,"loss":2}\n');
  });
});

describe('resume', () => {
  function ckpt(step: number): void {
    const dir = join(root, 'checkpoints', `step_${step}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'optimizer.safetensors'), '');
    writeFileSync(join(dir, 'trainer_state.json'), JSON.stringify({ global_step: step, epoch: 0, log_history: [] }));
  }

  test('auto → newest complete checkpoint or null; never → null; a path must be a checkpoint', () => {
    expect(resolveResume('auto', root)).toBeNull();
    ckpt(2);
    ckpt(5);
    expect(resolveResume('auto', root)).toBe(join(root, 'checkpoints', 'step_5'));
    expect(resolveResume('never', root)).toBeNull();
    expect(resolveResume(join(root, 'checkpoints', 'step_2'), root)).toBe(join(root, 'checkpoints', 'step_2'));
    expect(() => resolveResume(join(root, 'nope'), root)).toThrow(/train.resume: .*nope is not a folder/);
    expect(() => resolveResume(join(root, 'checkpoints'), root)).toThrow(/has no trainer_state.json/);
  });

  test('openStageRun: fresh start clears an earlier run; resume trims metrics; stop → exit 143', async () => {
    ckpt(2);
    writeFileSync(join(root, 'metrics.jsonl'), '{"step":1,"timestamp":0,"loss":3}\n{"step":3,"timestamp":0,"loss":1}\n');
    const { proc, stop } = fakeSignal();
    const resumed = await openStageRun({ stage: 'sft', outputDir: root, resolved, tracking, resume: 'auto', stopSignal: stop, log: () => undefined });
    expect(resumed.resumeFrom).toBe(join(root, 'checkpoints', 'step_2'));
    expect(readFileSync(join(root, 'metrics.jsonl'), 'utf8')).toBe('{"step":1,"timestamp":0,"loss":3}\n');
    expect(readFileSync(join(root, RESOLVED_CONFIG_FILE), 'utf8')).toContain('stage: sft');
    await resumed.tracker.logMetrics({ loss: 0.5 }, 3, 7);
    proc.emit('SIGTERM');
    expect(resumed.stop.requested).toBe(true);
    const err = resumed.stoppedError(3, '/x/step_3');
    expect(err).toBeInstanceOf(StageStopped);
    expect(err).toBeInstanceOf(UserError);
    expect(err.exitCode).toBe(143);
    expect(err.message).toMatch(/SIGTERM received: stopped after step 3, checkpoint written to \/x\/step_3/);
    expect(closeStatusFor(err)).toBe('KILLED');
    expect(closeStatusFor(new Error('x'))).toBe('FAILED');
    await resumed.close('KILLED');
    expect(proc.listenerCount('SIGTERM')).toBe(0); // handlers removed

    const fresh = await openStageRun({ stage: 'sft', outputDir: root, resolved, tracking, resume: 'never', stopSignal: fakeSignal().stop, log: () => undefined });
    expect(fresh.resumeFrom).toBeNull();
    expect(existsSync(join(root, 'checkpoints'))).toBe(false);
    expect(existsSync(join(root, 'metrics.jsonl'))).toBe(false);
    await fresh.close('FINISHED');
  });
});

describe('stage checkpoint bundle', () => {
  test('save → restore puts back weights, optimizer moments, step, rng and data cursor; leaks nothing', () => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]), true, 'run_test_w');
    const vars = new Map([['layer.weight', w]]);
    const opt = new AdamW(vars, { weightDecay: 0 });
    const rng = new Rng(7);
    const before = tf.memory().numTensors;
    const g = tf.tensor1d([0.5, -1, 2]);
    opt.step(new Map([['layer.weight', g]]), 0.1);
    g.dispose();
    rng.uniform();
    const weights = variableWeights(vars, { writeExtra: (dir) => writeFileSync(join(dir, 'config.json'), '{}') });
    const path = saveStageCheckpoint(root, { weights, optimizer: opt, step: 1, epoch: 0, rng, dataCursor: { epoch: 0, index: 4 }, extra: { kl_coef: 0.2 }, keepLast: 2 });
    expect(readdirSync(path).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const savedW = Array.from(w.dataSync());
    const savedM = opt.exportState();
    const nextDraw = rng.uniform();

    // Disturb everything, then restore.
    const g2 = tf.tensor1d([3, 3, 3]);
    opt.step(new Map([['layer.weight', g2]]), 0.1);
    g2.dispose();
    const rng2 = new Rng(99);
    const restored = restoreStageCheckpoint(path, { weights, optimizer: opt, rng: rng2 });
    expect(restored.step).toBe(1);
    expect(restored.dataCursor).toEqual({ epoch: 0, index: 4 });
    expect(restored.trainerState['kl_coef']).toBe(0.2);
    expect(Array.from(w.dataSync())).toEqual(savedW);
    expect(opt.stepCount).toBe(1);
    expect(Array.from(opt.exportState().get('exp_avg.layer.weight')!.data)).toEqual(Array.from(savedM.get('exp_avg.layer.weight')!.data));
    expect(rng2.uniform()).toBe(nextDraw);
    expect(tf.memory().numTensors).toBe(before);

    for (const s of [2, 3]) saveStageCheckpoint(root, { weights, optimizer: opt, step: s, epoch: 0, rng, keepLast: 2 });
    expect(checkpointSteps(root)).toEqual([2, 3]);
    opt.dispose();
    w.dispose();
  });

  test('several weight files (policy + critic): each saved to its file and restored; a missing one is named', () => {
    const a = tf.variable(tf.tensor1d([1, 2]), true, 'run_test_multi_a');
    const b = tf.variable(tf.tensor1d([5, 6, 7]), true, 'run_test_multi_b');
    const all = new Map([['policy.a', a], ['critic.b', b]]);
    const opt = new AdamW(all);
    const weights = [variableWeights(new Map([['a', a]]), { file: 'adapter_model.safetensors' }), variableWeights(new Map([['b', b]]), { file: 'critic.safetensors' })];
    const path = saveStageCheckpoint(root, { weights, optimizer: opt, step: 3, epoch: 0, rng: new Rng(2) });
    expect(readdirSync(path).sort()).toEqual(['adapter_model.safetensors', 'critic.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    a.assign(tf.tensor1d([0, 0]));
    b.assign(tf.tensor1d([0, 0, 0]));
    expect(restoreStageCheckpoint(path, { weights, optimizer: opt, rng: new Rng(9) }).step).toBe(3);
    expect(Array.from(a.dataSync())).toEqual([1, 2]);
    expect(Array.from(b.dataSync())).toEqual([5, 6, 7]);
    rmSync(join(path, 'critic.safetensors'));
    expect(() => restoreStageCheckpoint(path, { weights, optimizer: opt, rng: new Rng(9) })).toThrow(/critic\.safetensors: missing/);
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  test('restore into mis-shaped weights names the file', () => {
    const w = tf.variable(tf.tensor1d([1, 2]), true, 'run_test_w2');
    const opt = new AdamW(new Map([['a', w]]));
    const path = saveStageCheckpoint(root, { weights: variableWeights(new Map([['a', w]])), optimizer: opt, step: 1, epoch: 0, rng: new Rng(1) });
    const other = tf.variable(tf.tensor1d([1, 2, 3]), true, 'run_test_w3');
    expect(() => restoreStageCheckpoint(path, { weights: variableWeights(new Map([['a', other]])), optimizer: new AdamW(new Map([['a', other]])), rng: new Rng(1) })).toThrow(
      /model\.safetensors: weights do not fit the model: a has shape \[2\], expected \[3\]/,
    );
    for (const v of [w, other]) v.dispose();
    opt.dispose();
  });
});

test('one disk estimate for every stage: kept checkpoints (+1 being written) of weights and two moments, the final folder, float32, a fifth to spare', () => {
  // 1000 trainable weights, keep_last 2 → 3 checkpoints × 3 tensors; final folder 5000 weights.
  expect(runDiskBytes({ trainable: 1000, savedWeights: 5000, keepLast: 2 })).toBe(Math.ceil(4 * (3 * 3 * 1000 + 5000) * 1.2));
  // keep_last null (keep all) is counted as 3 kept.
  expect(runDiskBytes({ trainable: 10, savedWeights: 0, keepLast: null })).toBe(Math.ceil(4 * 4 * 3 * 10 * 1.2));
});
