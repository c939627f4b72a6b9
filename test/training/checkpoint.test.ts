import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  findLatestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from '../../src/training/checkpoint.js';

let runDir: string;
beforeEach(() => {
  runDir = mkdtempSync(join(tmpdir(), 'ckpt-'));
});
afterEach(() => rmSync(runDir, { recursive: true, force: true }));

function contents(step: number) {
  const trainerState: TrainerState = {
    global_step: step,
    epoch: step / 10,
    log_history: [{ step, loss: 1 / (step + 1) }],
    rng_state: [1, 2, 3, 4294967295],
    data_cursor: { epoch: 0, index: step * 8 },
  };
  return {
    tensors: new Map([['w', { shape: [2], data: new Float32Array([step, 0.1]) }]]),
    tensorsFile: 'adapter_model.safetensors',
    optimizer: new Map([['exp_avg.w', { shape: [2], data: new Float32Array([0.5, -0.25]) }]]),
    trainerState,
    writeExtra: (dir: string) => writeFileSync(join(dir, 'adapter_config.json'), '{"r": 2}'),
  };
}

describe('checkpoints', () => {
  test('save → load round-trips; folder named step_N with HF trainer_state keys', () => {
    const path = saveCheckpoint(runDir, contents(3));
    expect(path).toBe(join(runDir, 'checkpoints', 'step_3'));
    expect(readdirSync(path).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const json = JSON.parse(readFileSync(join(path, 'trainer_state.json'), 'utf8'));
    expect(Object.keys(json)).toEqual(['data_cursor', 'epoch', 'global_step', 'log_history', 'rng_state']);
    const loaded = loadCheckpoint(path, { tensorsFile: 'adapter_model.safetensors' });
    expect(Array.from(loaded.tensors!.get('w')!.data)).toEqual([3, Math.fround(0.1)]);
    expect(Array.from(loaded.optimizer.get('exp_avg.w')!.data)).toEqual([0.5, -0.25]);
    expect(loaded.trainerState.rng_state).toEqual([1, 2, 3, 4294967295]);
    expect(loaded.trainerState.data_cursor).toEqual({ epoch: 0, index: 24 });
  });

  test('keeps the last K; latest ignores temp and torn folders', () => {
    for (const s of [2, 4, 6, 8]) saveCheckpoint(runDir, contents(s), { keepLast: 2 });
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([6, 8]);
    const root = join(runDir, 'checkpoints');
    // Pruned checkpoints are renamed away before the delete (a kill mid-delete never leaves a
    // half-deleted step_N folder), and nothing of them is left.
    expect(readdirSync(root).sort()).toEqual(['step_6', 'step_8']);
    // A crash mid-write leaves a temp folder; a hand-damaged step folder lacks its optimizer.
    mkdirSync(join(root, '.tmp-step_10'));
    writeFileSync(join(root, '.tmp-step_10', 'trainer_state.json'), '{"global_step": 10, "epoch": 1, "log_history": []}');
    mkdirSync(join(root, 'step_12'));
    writeFileSync(join(root, 'step_12', 'trainer_state.json'), '{"global_step": 12, "epoch": 1');
    expect(findLatestCheckpoint(runDir)).toBe(join(root, 'step_8'));
    // The next save clears the temp folder.
    saveCheckpoint(runDir, contents(9), { keepLast: 2 });
    expect(existsSync(join(root, '.tmp-step_10'))).toBe(false);
    expect(findLatestCheckpoint(runDir)).toBe(join(root, 'step_9'));
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([8, 9]);
  });

  test('re-saving a step replaces it; no checkpoint → null', () => {
    expect(findLatestCheckpoint(runDir)).toBeNull();
    saveCheckpoint(runDir, contents(5));
    const c = contents(5);
    c.trainerState.epoch = 0.75;
    saveCheckpoint(runDir, c);
    expect(loadCheckpoint(findLatestCheckpoint(runDir)!).trainerState.epoch).toBe(0.75);
    expect(readdirSync(join(runDir, 'checkpoints'))).toEqual(['step_5']);
  });

  test('an incomplete checkpoint is a user error naming the file', () => {
    mkdirSync(join(runDir, 'bad'));
    expect(() => loadCheckpoint(join(runDir, 'bad'))).toThrow(/bad\/trainer_state\.json/);
  });
});
