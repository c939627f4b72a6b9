import { trainLoop, type LoopSpec, type Metrics } from '../../src/training/loop.js';
import { StageStopped, type StageRun } from '../../src/training/run.js';

/** A run folder stand-in: records logged rows; `stopAt` makes the stop signal fire after that step. */
function fakeRun(opts: { stopAt?: number } = {}) {
  const rows: Array<{ step: number; metrics: Metrics }> = [];
  let last = 0;
  const run = {
    dir: '/nowhere',
    resumeFrom: null,
    tracker: { logMetrics: async (metrics: Metrics, step: number) => void rows.push({ step, metrics: { ...metrics } }) },
    stop: { poll: async () => opts.stopAt !== undefined && last >= opts.stopAt },
    stoppedError: (step: number, path: string) => new StageStopped(`stopped after ${step} at ${path}`, { exitCode: 143 }),
    close: async () => {},
  } as unknown as StageRun;
  return { run, rows, setLast: (s: number) => (last = s) };
}

function spec(run: StageRun, over: Partial<LoopSpec>, calls: string[]): LoopSpec {
  return {
    label: 't',
    run,
    startStep: 0,
    totalSteps: 5,
    maxNonfinite: 2,
    evalEvery: 2,
    checkpointEvery: 0,
    step: (done) => ({ loss: 1 / (done + 1), gradNorm: 1, tokens: 10, apply: () => calls.push(`apply ${done + 1}`), release: () => calls.push(`release ${done + 1}`) }),
    evaluate: (at) => (calls.push(`eval ${at}`), { 'eval/loss': at }),
    checkpoint: (at) => (calls.push(`ckpt ${at}`), `ckpt_${at}`),
    log: () => {},
    ...over,
  };
}

test('eval every N steps and once more at the end; one final checkpoint; generic train/* figures', async () => {
  const calls: string[] = [];
  const { run, rows } = fakeRun();
  const r = await trainLoop(spec(run, {}, calls));
  expect(calls.filter((c) => !c.startsWith('apply') && !c.startsWith('release'))).toEqual(['eval 2', 'eval 4', 'eval 5', 'ckpt 5']);
  expect(r.step).toBe(5);
  expect(r.losses.map((l) => l.loss)).toEqual([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5]);
  expect(r.lastEval).toEqual({ 'eval/loss': 5 });
  expect(rows.map((x) => x.step)).toEqual([1, 2, 3, 4, 5, 5]);
  expect(Object.keys(rows[1]!.metrics).sort()).toEqual(['eval/loss', 'train/grad_norm', 'train/loss', 'train/tokens_per_sec']);
});

test('a non-finite step skips its update (gradients still released); maxNonfinite in a row aborts', async () => {
  const calls: string[] = [];
  const { run, rows } = fakeRun();
  const step: LoopSpec['step'] = (done) => ({
    loss: done === 1 || done >= 3 ? NaN : 1,
    gradNorm: 1,
    apply: () => calls.push(`apply ${done + 1}`),
    release: () => calls.push(`release ${done + 1}`),
  });
  await expect(trainLoop(spec(run, { step, evalEvery: 0 }, calls))).rejects.toThrow(/2 steps in a row/);
  expect(calls).toEqual(['apply 1', 'release 1', 'release 2', 'apply 3', 'release 3', 'release 4', 'release 5']);
  expect(rows.find((x) => x.step === 2)!.metrics['train/skipped_nonfinite']).toBe(1);
  expect(rows.find((x) => x.step === 1)!.metrics['train/skipped_nonfinite']).toBeUndefined();
});

test('a stop signal writes a checkpoint (or reuses the one just written) and throws StageStopped', async () => {
  const calls: string[] = [];
  const f = fakeRun({ stopAt: 2 });
  const s = spec(f.run, { checkpointEvery: 2, step: (done) => (f.setLast(done + 1), { loss: 1, gradNorm: 1, apply: () => {} }) }, calls);
  await expect(trainLoop(s)).rejects.toThrow(/stopped after 2 at \/nowhere\/checkpoints\/step_2/);
  expect(calls).toEqual(['eval 2', 'ckpt 2']);

  const g = fakeRun({ stopAt: 3 });
  const calls2: string[] = [];
  const s2 = spec(g.run, { checkpointEvery: 0, step: (done) => (g.setLast(done + 1), { loss: 1, gradNorm: 1, apply: () => {} }) }, calls2);
  await expect(trainLoop(s2)).rejects.toThrow(/stopped after 3 at ckpt_3/);
});

test('early stopping after an evaluation ends the loop, then the final checkpoint is written', async () => {
  const calls: string[] = [];
  const { run } = fakeRun();
  const r = await trainLoop(spec(run, { totalSteps: 10, stopEarly: (ev) => (ev['eval/loss']! >= 4 ? 'enough' : null) }, calls));
  expect(r.step).toBe(4);
  expect(r.stoppedEarly).toBe('enough');
  expect(calls.filter((c) => !c.startsWith('apply') && !c.startsWith('release'))).toEqual(['eval 2', 'eval 4', 'ckpt 4']);
});

test('a resumed run that is already done evaluates and writes nothing new but the final eval', async () => {
  const calls: string[] = [];
  const { run, rows } = fakeRun();
  const r = await trainLoop(spec(run, { startStep: 5 }, calls));
  expect(r.step).toBe(5);
  expect(calls).toEqual(['eval 5']);
  expect(rows).toEqual([{ step: 5, metrics: { 'eval/loss': 5 } }]);
});
