/**
 * Tracker on an MLflow tracking server (`tracking.uri: http(s)://…`). Metrics are buffered and sent
 * with log-batch (every `flushIntervalMs`, when 1000 are waiting, and at `end`), so a training step
 * does not wait on the network each time.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { defaultRunContext } from './context.js';
import { standardRunTags } from './file-store.js';
import { MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH, paramText, sanitizeKey, truncateCodePoints, type ParamValue } from './params.js';
import { BATCH_LIMITS, MlflowRestClient, type MetricPoint, type RestClientOptions } from './rest-client.js';
import type { EndStatus, RunContext, RunInfo, StartRunOptions, Tracker } from './types.js';

export interface RestTrackerOptions extends Omit<RestClientOptions, 'baseUrl'> {
  uri: string;
  context?: Partial<RunContext>;
  /** Send buffered metrics at least this often (0: with every logMetrics call). */
  flushIntervalMs?: number;
}

/** Every file under `dir`, as paths relative to it with `/` separators. */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listFiles(join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out.sort();
}

export class RestTracker implements Tracker {
  readonly description: string;
  readonly client: MlflowRestClient;
  private readonly context: RunContext;
  private readonly flushIntervalMs: number;
  private run: RunInfo | undefined;
  private pending: MetricPoint[] = [];
  private lastFlush = 0;

  constructor(options: RestTrackerOptions) {
    const { uri, context, flushIntervalMs, ...clientOptions } = options;
    this.client = new MlflowRestClient({ ...clientOptions, baseUrl: uri });
    this.context = defaultRunContext(context);
    this.flushIntervalMs = flushIntervalMs ?? 5_000;
    this.description = `MLflow server at ${this.client.baseUrl}`;
  }

  private ended = false;

  private active(): RunInfo {
    if (this.run === undefined) throw new Error('tracking: no active run (call start first)');
    return this.run;
  }

  async start(options: StartRunOptions): Promise<RunInfo> {
    if (this.run !== undefined && !this.ended) {
      throw new Error(`tracking: run ${this.run.runId} is still active; open a separate tracker for a nested run`);
    }
    const experimentId = await this.client.experimentIdFor(options.experiment);
    const tags = Object.entries(standardRunTags(this.context, options))
      .map(([key, value]) => ({ key, value: truncateCodePoints(value, MAX_TAG_VALUE_LENGTH) }));
    const startTime = this.context.clock();
    const { runId, artifactUri } = await this.client.createRun({
      experimentId, userId: this.context.user, runName: options.runName, startTime, tags,
    });
    this.run = { runId, experimentId, artifactUri };
    this.ended = false;
    this.pending = [];
    this.lastFlush = startTime;
    return this.run;
  }

  async logParams(params: Record<string, ParamValue>): Promise<void> {
    const run = this.active();
    const list = Object.entries(params).map(([key, value]) => ({
      key: sanitizeKey(key), value: truncateCodePoints(paramText(value), MAX_PARAM_VALUE_LENGTH),
    }));
    await this.client.logBatch(run.runId, { params: list });
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void> {
    this.active();
    const now = this.context.clock();
    const ts = timestamp ?? now;
    for (const [key, value] of Object.entries(metrics)) this.pending.push({ key: sanitizeKey(key), value, timestamp: ts, step });
    if (this.pending.length >= BATCH_LIMITS.metrics || now - this.lastFlush >= this.flushIntervalMs) await this.flush();
  }

  /** Sends buffered metrics. Kept in the buffer if the send fails, so `end` can try once more. */
  async flush(): Promise<void> {
    const run = this.active();
    this.lastFlush = this.context.clock();
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.client.logBatch(run.runId, { metrics: batch });
    } catch (e) {
      this.pending = batch.concat(this.pending);
      throw e;
    }
  }

  async setTag(key: string, value: string): Promise<void> {
    await this.client.setTag(this.active().runId, sanitizeKey(key), truncateCodePoints(value, MAX_TAG_VALUE_LENGTH));
  }

  async logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    const run = this.active();
    const prefix = [...(artifactPath ?? '').split('/').filter((s) => s !== '' && s !== '.'), basename(resolve(localPath))].join('/');
    const files = statSync(localPath).isDirectory()
      ? listFiles(localPath).map((rel) => ({ abs: join(localPath, rel), rel: `${prefix}/${rel}` }))
      : [{ abs: localPath, rel: prefix }];
    for (const file of files) await this.client.uploadArtifact(run.artifactUri, file.rel, readFileSync(file.abs));
  }

  async end(status: EndStatus = 'FINISHED'): Promise<void> {
    const run = this.active();
    await this.flush();
    await this.client.updateRun(run.runId, status, this.context.clock());
    this.ended = true;
  }
}
