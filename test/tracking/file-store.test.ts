import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { FileStoreTracker } from '../../src/tracking/file-store.js';
import type { RunContext } from '../../src/tracking/types.js';

/** Every file (with its text) and every empty folder (trailing '/') under root. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    const entries = readdirSync(dir);
    if (entries.length === 0 && dir !== root) out[relative(root, dir) + '/'] = '';
    for (const name of entries) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(root, path)] = readFileSync(path, 'utf8');
    }
  };
  walk(root);
  return out;
}

describe('FileStoreTracker writes mlruns exactly as MLflow FileStore does', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'rlhf-track-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('parent + nested run: meta.yaml, metrics, params, tags, artifacts, byte for byte', async () => {
    // The space in the folder name checks the %20 in artifact URIs (pathlib.Path.as_uri).
    expect(tmp).toMatch(/^[\w/.-]+$/);
    const root = join(tmp, 'my runs', 'mlruns');
    const uriRoot = `file://${tmp}/my%20runs/mlruns`;
    let now = 1700000000000;
    const ids = ['0123456789abcdef0123456789abcdef', 'fedcba9876543210fedcba9876543210'];
    const context: RunContext = {
      clock: () => now, newRunId: () => ids.shift()!, user: 'alice', sourceName: '/opt/rlhf/dist/cli/main.js',
    };
    const P = '0123456789abcdef0123456789abcdef';
    const C = 'fedcba9876543210fedcba9876543210';

    const parent = new FileStoreTracker({ root, context });
    const parentRun = await parent.start({ experiment: 'rlhf-kit', runName: 'pipeline' });
    expect(parentRun).toEqual({ runId: P, experimentId: '1', artifactUri: `${uriRoot}/1/${P}/artifacts` });
    now = 1700000001000;
    await parent.logParams({ 'optim.lr': 0.0003, 'model.name': 'tiny llama' });

    now = 1700000002000;
    const child = new FileStoreTracker({ root, context });
    await child.start({ experiment: 'rlhf-kit', runName: 'sft', parentRunId: P, tags: { stage: 'sft' } });
    now = 1700000003000;
    await child.logMetrics({ 'loss': 2.5, 'objective/kl': 0.00001 }, 1);
    now = 1700000004000;
    await child.logMetrics({ 'loss': 2, 'objective/kl': NaN }, 2);
    await child.setTag('note', "it's fine");
    const adapter = join(tmp, 'adapter_config.json');
    writeFileSync(adapter, '{"r": 8}\n');
    await child.logArtifact(adapter, 'final');
    now = 1700000005000;
    await child.end('FINISHED');
    now = 1700000006000;
    await parent.end('FAILED');

    const experimentMeta = (id: string, name: string) =>
      `artifact_location: ${uriRoot}/${id}\n` +
      'creation_time: 1700000000000\n' +
      `experiment_id: '${id}'\n` +
      'last_update_time: 1700000000000\n' +
      'lifecycle_stage: active\n' +
      `name: ${name}\n`;
    const runMeta = (id: string, name: string, start: number, end: number, status: number) =>
      `artifact_uri: ${uriRoot}/1/${id}/artifacts\n` +
      `end_time: ${end}\n` +
      "entry_point_name: ''\n" +
      "experiment_id: '1'\n" +
      'lifecycle_stage: active\n' +
      `run_id: ${id}\n` +
      `run_name: ${name}\n` +
      `run_uuid: ${id}\n` +
      "source_name: ''\n" +
      'source_type: 4\n' +
      "source_version: ''\n" +
      `start_time: ${start}\n` +
      `status: ${status}\n` +
      'tags: []\n' +
      'user_id: alice\n';

    expect(snapshot(root)).toEqual({
      '.trash/': '',
      '0/meta.yaml': experimentMeta('0', 'Default'),
      '1/meta.yaml': experimentMeta('1', 'rlhf-kit'),

      [`1/${P}/meta.yaml`]: runMeta(P, 'pipeline', 1700000000000, 1700000006000, 4),
      [`1/${P}/metrics/`]: '',
      [`1/${P}/artifacts/`]: '',
      [`1/${P}/params/optim.lr`]: '0.0003',
      [`1/${P}/params/model.name`]: 'tiny llama',
      [`1/${P}/tags/mlflow.user`]: 'alice',
      [`1/${P}/tags/mlflow.source.name`]: '/opt/rlhf/dist/cli/main.js',
      [`1/${P}/tags/mlflow.source.type`]: 'LOCAL',
      [`1/${P}/tags/mlflow.runName`]: 'pipeline',

      [`1/${C}/meta.yaml`]: runMeta(C, 'sft', 1700000002000, 1700000005000, 3),
      [`1/${C}/params/`]: '',
      [`1/${C}/metrics/loss`]: '1700000003000 2.5 1\n1700000004000 2.0 2\n',
      [`1/${C}/metrics/objective/kl`]: '1700000003000 1e-05 1\n1700000004000 nan 2\n',
      [`1/${C}/artifacts/final/adapter_config.json`]: '{"r": 8}\n',
      [`1/${C}/tags/mlflow.user`]: 'alice',
      [`1/${C}/tags/mlflow.source.name`]: '/opt/rlhf/dist/cli/main.js',
      [`1/${C}/tags/mlflow.source.type`]: 'LOCAL',
      [`1/${C}/tags/mlflow.runName`]: 'sft',
      [`1/${C}/tags/mlflow.parentRunId`]: P,
      [`1/${C}/tags/stage`]: 'sft',
      [`1/${C}/tags/note`]: "it's fine",
    });
  });

  it('reuses an experiment by name, gives a new name the next id, refuses a name in .trash', async () => {
    const root = join(tmp, 'mlruns');
    let n = 0;
    const context = { clock: () => 1, newRunId: () => `run${++n}`.padEnd(32, '0'), user: 'u', sourceName: 's' };
    const t = new FileStoreTracker({ root, context });
    expect((await t.start({ experiment: 'a', runName: 'r1' })).experimentId).toBe('1');
    await t.end();
    expect((await t.start({ experiment: 'b', runName: 'r2' })).experimentId).toBe('2');
    await t.end();
    expect((await t.start({ experiment: 'a', runName: 'r3' })).experimentId).toBe('1');
    await t.end();
    expect((await t.start({ experiment: 'Default', runName: 'r4' })).experimentId).toBe('0');
    await t.end();

    // A deleted experiment (moved to .trash by `mlflow experiments delete`) keeps its id and name.
    mkdirSync(join(root, '.trash', '7'));
    writeFileSync(join(root, '.trash', '7', 'meta.yaml'), "experiment_id: '7'\nlifecycle_stage: deleted\nname: old\n");
    await expect(t.start({ experiment: 'old', runName: 'x' })).rejects.toThrow(/experiment 'old' is deleted/);
    expect((await t.start({ experiment: 'c', runName: 'r5' })).experimentId).toBe('8');
  });

  it('params are immutable as in MLflow; renaming through the mlflow.runName tag updates meta.yaml', async () => {
    const root = join(tmp, 'mlruns');
    const context = { clock: () => 5, newRunId: () => 'a'.repeat(32), user: 'u', sourceName: 's' };
    const t = new FileStoreTracker({ root, context });
    await t.start({ experiment: 'e', runName: 'first' });
    await t.logParams({ lr: 0.1 });
    await t.logParams({ lr: 0.1 });
    await expect(t.logParams({ lr: 0.2 })).rejects.toThrow(/param 'lr' was already logged as '0.1'/);
    await t.setTag('mlflow.runName', 'second');
    const meta = readFileSync(join(root, '1', 'a'.repeat(32), 'meta.yaml'), 'utf8');
    expect(meta).toContain('\nrun_name: second\n');
    expect(meta).toContain('\nstatus: 1\n');
    expect(meta).toContain('\nend_time: null\n');
  });
});
