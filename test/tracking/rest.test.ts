import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffDelay, chunkBatch, MlflowRestClient, proxiedArtifactPath } from '../../src/tracking/rest-client.js';
import { RestTracker } from '../../src/tracking/rest-tracker.js';
import { openTracker } from '../../src/tracking/index.js';

interface Recorded { method: string; url: string; body: string }

/** A fake MLflow server: records every request; `failures` makes an endpoint answer 503 N times first. */
async function startFakeMlflow(failures: Record<string, number> = {}): Promise<{ server: Server; url: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const experiments = new Map<string, string>([['Default', '0']]);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = req.url ?? '';
      requests.push({ method: req.method ?? '', url, body });
      const path = url.split('?')[0]!;
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      if ((failures[path] ?? 0) > 0) {
        failures[path]!--;
        return send(503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' });
      }
      if (path === '/api/2.0/mlflow/experiments/get-by-name') {
        const name = new URL(url, 'http://x').searchParams.get('experiment_name') ?? '';
        const id = experiments.get(name);
        return id === undefined
          ? send(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Could not find experiment with name '${name}'` })
          : send(200, { experiment: { experiment_id: id, name, lifecycle_stage: 'active' } });
      }
      if (path === '/api/2.0/mlflow/experiments/create') {
        const id = String(experiments.size + 6);
        experiments.set((JSON.parse(body) as { name: string }).name, id);
        return send(200, { experiment_id: id });
      }
      if (path === '/api/2.0/mlflow/runs/create') {
        const exp = (JSON.parse(body) as { experiment_id: string }).experiment_id;
        return send(200, { run: { info: { run_id: 'r1', experiment_id: exp, artifact_uri: `mlflow-artifacts:/${exp}/r1/artifacts` }, data: {} } });
      }
      if (path === '/api/2.0/mlflow/runs/log-batch' || path === '/api/2.0/mlflow/runs/set-tag' ||
        path === '/api/2.0/mlflow/runs/update' || path.startsWith('/api/2.0/mlflow-artifacts/artifacts/')) return send(200, {});
      send(400, { error_code: 'BAD_REQUEST', message: `unknown endpoint ${path}` });
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, requests };
}

const stop = (server: Server) => new Promise<void>((done) => server.close(() => done()));
const context = { clock: () => 1700000000000, user: 'alice', sourceName: 'train.js', newRunId: () => 'unused' };

describe('MLflow REST tracker against an in-process server', () => {
  let tmp: string;
  beforeEach(() => { tmp = mkdtempSync(join(tmpdir(), 'rlhf-rest-')); });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('creates the experiment and run, logs params/metrics/tags, uploads artifacts, ends the run', async () => {
    const { server, url, requests } = await startFakeMlflow();
    try {
      const tracker = new RestTracker({ uri: url, context, flushIntervalMs: 60_000, sleep: async () => {} });
      const run = await tracker.start({ experiment: 'rlhf-kit', runName: 'sft', parentRunId: 'p0', tags: { stage: 'sft' } });
      expect(run).toEqual({ runId: 'r1', experimentId: '7', artifactUri: 'mlflow-artifacts:/7/r1/artifacts' });
      await tracker.logParams({ 'optim.lr': 0.0003, 'x': 'y'.repeat(7000) });
      await tracker.logMetrics({ 'loss': 2.5, 'objective/kl': NaN }, 1, 1700000000100);
      await tracker.logMetrics({ loss: 2 }, 2, 1700000000200);
      await tracker.setTag('note', 'hi');
      const dir = join(tmp, 'final');
      mkdirSync(join(dir, 'sub'), { recursive: true });
      writeFileSync(join(dir, 'config.json'), '{}');
      writeFileSync(join(dir, 'sub', 'w b.bin'), Buffer.from([1, 2, 3]));
      await tracker.logArtifact(dir, 'model');
      await tracker.end('FINISHED');

      const calls = requests.map((r) => `${r.method} ${r.url}`);
      expect(calls).toEqual([
        'GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=rlhf-kit',
        'POST /api/2.0/mlflow/experiments/create',
        'POST /api/2.0/mlflow/runs/create',
        'POST /api/2.0/mlflow/runs/log-batch',
        'POST /api/2.0/mlflow/runs/set-tag',
        'PUT /api/2.0/mlflow-artifacts/artifacts/7/r1/artifacts/model/final/config.json',
        'PUT /api/2.0/mlflow-artifacts/artifacts/7/r1/artifacts/model/final/sub/w%20b.bin',
        'POST /api/2.0/mlflow/runs/log-batch',
        'POST /api/2.0/mlflow/runs/update',
      ]);
      const body = (i: number) => JSON.parse(requests[i]!.body) as Record<string, unknown>;
      expect(body(1)).toEqual({ name: 'rlhf-kit' });
      expect(body(2)).toEqual({
        experiment_id: '7', user_id: 'alice', run_name: 'sft', start_time: 1700000000000,
        tags: [
          { key: 'stage', value: 'sft' },
          { key: 'mlflow.user', value: 'alice' },
          { key: 'mlflow.source.name', value: 'train.js' },
          { key: 'mlflow.source.type', value: 'LOCAL' },
          { key: 'mlflow.runName', value: 'sft' },
          { key: 'mlflow.parentRunId', value: 'p0' },
        ],
      });
      expect(body(3)).toEqual({
        run_id: 'r1', metrics: [], tags: [],
        params: [{ key: 'optim.lr', value: '0.0003' }, { key: 'x', value: 'y'.repeat(6000) }],
      });
      expect(body(4)).toEqual({ run_id: 'r1', key: 'note', value: 'hi' });
      expect(requests[6]!.body).toBe('\u0001\u0002\u0003');
      expect(body(7)).toEqual({
        run_id: 'r1', params: [], tags: [],
        metrics: [
          { key: 'loss', value: 2.5, timestamp: 1700000000100, step: 1 },
          { key: 'objective/kl', value: 'NaN', timestamp: 1700000000100, step: 1 },
          { key: 'loss', value: 2, timestamp: 1700000000200, step: 2 },
        ],
      });
      expect(body(8)).toEqual({ run_id: 'r1', status: 'FINISHED', end_time: 1700000000000 });
    } finally {
      await stop(server);
    }
  });

  it('retries a request that fails twice, with exponential backoff, then succeeds', async () => {
    const { server, url, requests } = await startFakeMlflow({ '/api/2.0/mlflow/runs/create': 2 });
    const waits: number[] = [];
    try {
      const tracker = new RestTracker({ uri: url, context, sleep: async (ms) => { waits.push(ms); }, baseDelayMs: 100 });
      const run = await tracker.start({ experiment: 'Default', runName: 'r' });
      expect(run.runId).toBe('r1');
      expect(waits).toEqual([100, 200]);
      expect(requests.filter((r) => r.url === '/api/2.0/mlflow/runs/create')).toHaveLength(3);
    } finally {
      await stop(server);
    }
  });

  it('does not retry a client error (4xx other than 408/429)', async () => {
    const { server, url, requests } = await startFakeMlflow();
    const waits: number[] = [];
    try {
      const client = new MlflowRestClient({ baseUrl: url, sleep: async (ms) => { waits.push(ms); } });
      await expect(client.request('POST', '/api/2.0/mlflow/nope', {})).rejects.toThrow(/HTTP 400 BAD_REQUEST unknown endpoint/);
      expect(requests).toHaveLength(1);
      expect(waits).toEqual([]);
    } finally {
      await stop(server);
    }
  });

  it('a server that is down: warns once, training goes on, metrics.jsonl is complete', async () => {
    const { server, url } = await startFakeMlflow();
    await stop(server); // nothing listens on that port any more
    const warnings: string[] = [];
    const waits: number[] = [];
    const runDir = join(tmp, 'runs', 'demo', 'sft');
    const tracker = openTracker({
      uri: url, runDir, context, warn: (m) => warnings.push(m),
      rest: { sleep: async (ms) => { waits.push(ms); }, maxRetries: 3, baseDelayMs: 10 },
    });
    const run = await tracker.start({ experiment: 'e', runName: 'sft' });
    expect(run.runId).toBe('');
    await tracker.logParams({ a: 1 });
    await tracker.logMetrics({ loss: 1.5 }, 1);
    await tracker.logMetrics({ loss: 1.25 }, 2);
    await tracker.end('FINISHED');
    expect(waits).toEqual([10, 20, 40]); // only the first call retried; later calls were skipped
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^warning: tracking to MLflow server at ${url} failed during start: GET /api/2.0/mlflow/experiments/get-by-name: .*ECONNREFUSED.*gave up after 4 attempts.*metrics are still written to .*metrics.jsonl`));
    expect(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).toBe(
      '{"step":1,"timestamp":1700000000000,"loss":1.5}\n{"step":2,"timestamp":1700000000000,"loss":1.25}\n');
  });
});

describe('REST helpers', () => {
  it('backoff doubles from the base delay and is capped', () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 500, 8000))).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  });

  it('splits log-batch payloads at 1000 metrics / 100 params / 100 tags / 1000 entries', () => {
    const metrics = Array.from({ length: 2050 }, (_, i) => ({ key: 'm', value: i, timestamp: 0, step: i }));
    const params = Array.from({ length: 150 }, (_, i) => ({ key: `p${i}`, value: '' }));
    const sizes = chunkBatch(metrics, params, []).map((b) => [b.metrics.length, b.params.length, b.tags.length]);
    expect(sizes).toEqual([[900, 100, 0], [950, 50, 0], [200, 0, 0]]);
  });

  it('maps proxied artifact URIs to the mlflow-artifacts path', () => {
    expect(proxiedArtifactPath('mlflow-artifacts:/7/r1/artifacts')).toBe('7/r1/artifacts');
    expect(proxiedArtifactPath('mlflow-artifacts://host:5000/7/r1/artifacts/')).toBe('7/r1/artifacts');
    expect(proxiedArtifactPath('s3://bucket/7/r1/artifacts')).toBeUndefined();
  });
});
