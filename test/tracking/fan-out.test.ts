import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FanOutTracker } from '../../src/tracking/fan-out.js';
import { FileStoreTracker } from '../../src/tracking/file-store.js';
import { metricsJsonLine, readMetricsJsonl } from '../../src/tracking/metrics-jsonl.js';
import { openTracker } from '../../src/tracking/index.js';
import type { RunInfo, StartRunOptions, Tracker } from '../../src/tracking/types.js';

/** Records calls; throws from `failOn` every time. */
class FakeBackend implements Tracker {
  readonly description: string;
  calls: string[] = [];
  constructor(name: string, private readonly failOn?: string) {
    this.description = name;
  }
  private record(call: string): void {
    this.calls.push(call);
    if (this.failOn !== undefined && call.startsWith(this.failOn)) throw new Error(`${this.description} broke`);
  }
  async start(o: StartRunOptions): Promise<RunInfo> {
    this.record(`start ${o.runName} parent=${o.parentRunId ?? '-'}`);
    return { runId: `${this.description}-${o.runName}`, experimentId: '1', artifactUri: '' };
  }
  async logParams(p: Record<string, unknown>): Promise<void> { this.record(`params ${JSON.stringify(p)}`); }
  async logMetrics(m: Record<string, number>, step: number, ts?: number): Promise<void> { this.record(`metrics ${step} ${ts} ${JSON.stringify(m)}`); }
  async setTag(k: string, v: string): Promise<void> { this.record(`tag ${k}=${v}`); }
  async logArtifact(p: string, a?: string): Promise<void> { this.record(`artifact ${p} ${a}`); }
  async end(s?: string): Promise<void> { this.record(`end ${s}`); }
}

describe('FanOutTracker', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'rlhf-fan-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes metrics.jsonl, forwards one timestamp to every backend, drops a failing backend after one warning', async () => {
    const good = new FakeBackend('good');
    const bad = new FakeBackend('bad', 'metrics');
    const warnings: string[] = [];
    let now = 1000;
    const t = new FanOutTracker({ backends: [bad, good], runDir: tmp, clock: () => now, warn: (m) => warnings.push(m) });
    expect(await t.start({ experiment: 'e', runName: 'sft' })).toEqual({ runId: 'bad-sft', experimentId: '1', artifactUri: '' });
    await t.logMetrics({ loss: 1 }, 1);
    now = 2000;
    await t.logMetrics({ loss: 0.5, kl: Infinity }, 2);
    await t.end('KILLED');

    expect(good.calls).toEqual(['start sft parent=-', 'metrics 1 1000 {"loss":1}', 'metrics 2 2000 {"loss":0.5,"kl":null}', 'end KILLED']);
    expect(bad.calls).toEqual(['start sft parent=-', 'metrics 1 1000 {"loss":1}']);
    expect(warnings).toEqual([
      `warning: tracking to bad failed during logMetrics: bad broke. Training continues without it; metrics are still written to ${join(tmp, 'metrics.jsonl')}.`,
    ]);
    expect(readFileSync(join(tmp, 'metrics.jsonl'), 'utf8')).toBe(
      '{"step":1,"timestamp":1000,"loss":1}\n{"step":2,"timestamp":2000,"loss":0.5,"kl":"Infinity"}\n');
  });

  it('nested runs: a second tracker gets the parent id; a backend failing at start is skipped', async () => {
    const warnings: string[] = [];
    const parentTracker = new FanOutTracker({ backends: [new FakeBackend('a')], warn: (m) => warnings.push(m) });
    const parent = await parentTracker.start({ experiment: 'e', runName: 'pipeline' });
    const down = new FakeBackend('down', 'start');
    const a = new FakeBackend('a');
    const child = new FanOutTracker({ backends: [down, a], warn: (m) => warnings.push(m) });
    expect((await child.start({ experiment: 'e', runName: 'sft', parentRunId: parent.runId })).runId).toBe('a-sft');
    await child.setTag('k', 'v');
    expect(a.calls).toEqual(['start sft parent=a-pipeline', 'tag k=v']);
    expect(down.calls).toEqual(['start sft parent=a-pipeline']);
    expect(warnings).toEqual(['warning: tracking to down failed during start: down broke. Training continues without it.']);
  });

  it('openTracker: a folder path means the MLflow file store; none means metrics.jsonl only', async () => {
    const context = { clock: () => 42, newRunId: () => 'c'.repeat(32), user: 'u', sourceName: 's' };
    const withStore = openTracker({ uri: join(tmp, 'mlruns'), runDir: join(tmp, 'run'), context });
    expect(withStore.description).toBe(`MLflow file store at ${join(tmp, 'mlruns')} + ${join(tmp, 'run', 'metrics.jsonl')}`);
    const run = await withStore.start({ experiment: 'e', runName: 'r' });
    await withStore.logMetrics({ loss: 3 }, 7);
    await withStore.end();
    expect(readFileSync(join(tmp, 'mlruns', '1', run.runId, 'metrics', 'loss'), 'utf8')).toBe('42 3.0 7\n');
    expect(readMetricsJsonl(join(tmp, 'run', 'metrics.jsonl'))).toEqual([{ step: 7, timestamp: 42, loss: 3 }]);

    const bare = openTracker({ uri: 'none', runDir: join(tmp, 'bare'), context });
    expect((await bare.start({ experiment: 'e', runName: 'r' })).runId).toBe('');
    await bare.logMetrics({ loss: NaN }, 1);
    expect(readMetricsJsonl(join(tmp, 'bare', 'metrics.jsonl'))).toEqual([{ step: 1, timestamp: 42, loss: NaN }]);
    expect(openTracker({ uri: `file://${tmp}/m2` }).description).toBe(`MLflow file store at ${tmp}/m2`);
    expect(new FileStoreTracker({ root: 'x' }).description).toMatch(/^MLflow file store at \/.*\/x$/);
  });
});

describe('metricsJsonLine', () => {
  it('puts step and timestamp first and keeps them from being overwritten', () => {
    expect(metricsJsonLine(3, 99, { step: 8, 'objective/kl': -Infinity, loss: 0.25 }))
      .toBe('{"step":3,"timestamp":99,"objective/kl":"-Infinity","loss":0.25}\n');
  });
});
