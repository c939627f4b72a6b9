/**
 * A small MLflow REST API 2.0 client on `fetch`, with retries and exponential backoff for the
 * failures that pass (network errors, timeouts, 408/429/5xx — the codes MLflow's own client retries).
 * Endpoints: experiments get-by-name/create, runs create/update/log-batch/set-tag, and artifact
 * upload through the tracking server's `mlflow-artifacts` proxy.
 */

import type { RunStatus } from './types.js';

/** Status codes MLflow's client treats as transient (mlflow/utils/request_utils.py). */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** log-batch limits (mlflow/utils/validation.py): per request. */
export const BATCH_LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000 } as const;

export class MlflowRestError extends Error {
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  constructor(message: string, status?: number, errorCode?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MlflowRestError';
    this.status = status;
    this.errorCode = errorCode;
  }
}

export interface RestClientOptions {
  /** Tracking server, e.g. `http://127.0.0.1:5000` (a path prefix is kept). */
  baseUrl: string;
  fetch?: typeof fetch;
  /** Waits between attempts; injected by tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Attempts after the first one. */
  maxRetries?: number;
  /** First backoff; doubles every retry up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt. */
  timeoutMs?: number;
  /** e.g. Authorization; see `authHeadersFromEnv`. */
  headers?: Record<string, string>;
}

export interface MetricPoint { key: string; value: number; timestamp: number; step: number }
export interface KeyValue { key: string; value: string }

/** Backoff before retry `attempt` (0-based): base·2^attempt, capped. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
}

/** The credentials MLflow's client reads: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/PASSWORD. */
export function authHeadersFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return { Authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}` };
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    const basic = Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`).toString('base64');
    return { Authorization: `Basic ${basic}` };
  }
  return {};
}

/** Protobuf JSON spells non-finite doubles as strings; plain JSON cannot carry them. */
function jsonDouble(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** Splits a log-batch payload into requests within MLflow's limits. */
export function chunkBatch(metrics: readonly MetricPoint[], params: readonly KeyValue[], tags: readonly KeyValue[]):
  { metrics: MetricPoint[]; params: KeyValue[]; tags: KeyValue[] }[] {
  const batches: { metrics: MetricPoint[]; params: KeyValue[]; tags: KeyValue[] }[] = [];
  let p = 0, t = 0, m = 0;
  while (p < params.length || t < tags.length || m < metrics.length) {
    const batchParams = params.slice(p, p + BATCH_LIMITS.params);
    const batchTags = tags.slice(t, t + BATCH_LIMITS.tags);
    const room = BATCH_LIMITS.total - batchParams.length - batchTags.length;
    const batchMetrics = metrics.slice(m, m + Math.min(BATCH_LIMITS.metrics, room));
    p += batchParams.length;
    t += batchTags.length;
    m += batchMetrics.length;
    batches.push({ metrics: batchMetrics, params: batchParams, tags: batchTags });
  }
  return batches;
}

/** `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host/1/...` → `1/<run>/artifacts`. */
export function proxiedArtifactPath(artifactUri: string): string | undefined {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(artifactUri);
  return match ? match[1]!.replace(/\/+$/, '') : undefined;
}

export class MlflowRestClient {
  readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(options: RestClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
    this.maxRetries = options.maxRetries ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 16_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers ?? {};
  }

  /** One HTTP exchange, retried while the failure is transient. Returns the parsed JSON body. */
  async request<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT', path: string,
    body?: unknown, query?: Record<string, string>): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const isBytes = body instanceof Uint8Array;
    const headers: Record<string, string> = { ...this.headers };
    if (body !== undefined) headers['Content-Type'] = isBytes ? 'application/octet-stream' : 'application/json';
    // Uint8Array<ArrayBufferLike> is a valid fetch body at runtime; the DOM typings only accept ArrayBuffer-backed views.
    const payload = body === undefined ? undefined : isBytes ? (body as unknown as BodyInit) : JSON.stringify(body);

    let lastError: MlflowRestError | undefined;
    for (let attempt = 0; attempt <= this.maxRetries; attempt++) {
      if (attempt > 0) await this.sleep(backoffDelay(attempt - 1, this.baseDelayMs, this.maxDelayMs));
      let response: Response;
      try {
        response = await this.fetchFn(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (e) {
        lastError = new MlflowRestError(`${method} ${url.pathname}: ${describeFetchError(e)}`, undefined, undefined, e);
        continue;
      }
      const text = await response.text();
      if (response.ok) return (text === '' ? {} : JSON.parse(text)) as T;
      let errorCode: string | undefined;
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { error_code?: string; message?: string };
        errorCode = parsed.error_code;
        message = parsed.message ?? message;
      } catch { /* not JSON: keep the raw text */ }
      lastError = new MlflowRestError(`${method} ${url.pathname}: HTTP ${response.status} ${errorCode ?? ''} ${message}`.trim(),
        response.status, errorCode);
      if (!TRANSIENT_STATUS.has(response.status)) throw lastError;
    }
    throw new MlflowRestError(`${lastError!.message} (gave up after ${this.maxRetries + 1} attempts)`,
      lastError!.status, lastError!.errorCode, lastError);
  }

  async getExperimentIdByName(name: string): Promise<string | undefined> {
    try {
      const res = await this.request<{ experiment?: { experiment_id?: string; lifecycle_stage?: string } }>(
        'GET', '/api/2.0/mlflow/experiments/get-by-name', undefined, { experiment_name: name });
      return res.experiment?.experiment_id;
    } catch (e) {
      if (e instanceof MlflowRestError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw e;
    }
  }

  async createExperiment(name: string): Promise<string> {
    const res = await this.request<{ experiment_id: string }>('POST', '/api/2.0/mlflow/experiments/create', { name });
    return res.experiment_id;
  }

  /** Get-or-create; a concurrent creator winning the race is fine. */
  async experimentIdFor(name: string): Promise<string> {
    const existing = await this.getExperimentIdByName(name);
    if (existing !== undefined) return existing;
    try {
      return await this.createExperiment(name);
    } catch (e) {
      if (e instanceof MlflowRestError && e.errorCode === 'RESOURCE_ALREADY_EXISTS') {
        const id = await this.getExperimentIdByName(name);
        if (id !== undefined) return id;
      }
      throw e;
    }
  }

  async createRun(args: { experimentId: string; userId: string; runName: string; startTime: number; tags: KeyValue[] }):
    Promise<{ runId: string; artifactUri: string }> {
    const res = await this.request<{ run: { info: { run_id: string; artifact_uri?: string } } }>(
      'POST', '/api/2.0/mlflow/runs/create', {
        experiment_id: args.experimentId,
        user_id: args.userId,
        run_name: args.runName,
        start_time: args.startTime,
        tags: args.tags,
      });
    return { runId: res.run.info.run_id, artifactUri: res.run.info.artifact_uri ?? '' };
  }

  async updateRun(runId: string, status: RunStatus, endTime: number): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/update', { run_id: runId, status, end_time: endTime });
  }

  async logBatch(runId: string, batch: { metrics?: MetricPoint[]; params?: KeyValue[]; tags?: KeyValue[] }): Promise<void> {
    for (const chunk of chunkBatch(batch.metrics ?? [], batch.params ?? [], batch.tags ?? [])) {
      await this.request('POST', '/api/2.0/mlflow/runs/log-batch', {
        run_id: runId,
        metrics: chunk.metrics.map((m) => ({ ...m, value: jsonDouble(m.value) })),
        params: chunk.params,
        tags: chunk.tags,
      });
    }
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.request('POST', '/api/2.0/mlflow/runs/set-tag', { run_id: runId, key, value });
  }

  /** PUT one file's bytes to `<artifact root>/<relativePath>` through the server's artifact proxy. */
  async uploadArtifact(artifactUri: string, relativePath: string, bytes: Uint8Array): Promise<void> {
    const root = proxiedArtifactPath(artifactUri);
    if (root === undefined) {
      throw new MlflowRestError(`run artifact location ${artifactUri} is not served by the tracking server ` +
        '(start it with --serve-artifacts, the default since MLflow 2.0)');
    }
    const path = [root, relativePath].filter((s) => s !== '').join('/').split('/').map(encodeURIComponent).join('/');
    await this.request('PUT', `/api/2.0/mlflow-artifacts/artifacts/${path}`, bytes);
  }
}

/** "fetch failed (ECONNREFUSED)"; duck-typed because errors may come from another realm (jest VM). */
function describeFetchError(e: unknown): string {
  if (typeof e !== 'object' || e === null) return String(e);
  const { message, cause, name } = e as { message?: unknown; cause?: unknown; name?: unknown };
  if (name === 'TimeoutError') return 'timed out';
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? ` (${String((cause as { code: unknown }).code)})` : '';
  return `${typeof message === 'string' ? message : String(e)}${code}`;
}
