/**
 * The tracker recipes hold: writes `metrics.jsonl` in the run folder and forwards every call to the
 * MLflow backends. A backend that fails is reported once and then left alone — tracking never stops
 * training, and the local metrics.jsonl is always complete.
 */

import { join } from 'node:path';
import { METRICS_FILE, MetricsJsonlWriter } from './metrics-jsonl.js';
import type { ParamValue } from './params.js';
import type { EndStatus, RunInfo, StartRunOptions, Tracker } from './types.js';

export interface FanOutOptions {
  backends: Tracker[];
  /** The stage's run folder; metrics.jsonl goes here. Omitted: no local copy. */
  runDir?: string;
  clock?: () => number;
  /** Where the one warning per failed backend goes (default: console.warn). */
  warn?: (message: string) => void;
}

export class FanOutTracker implements Tracker {
  readonly description: string;
  private readonly backends: Tracker[];
  private readonly failed = new Set<number>();
  private readonly jsonl: MetricsJsonlWriter | undefined;
  private readonly clock: () => number;
  private readonly warn: (message: string) => void;

  constructor(options: FanOutOptions) {
    this.backends = options.backends;
    this.jsonl = options.runDir === undefined ? undefined : new MetricsJsonlWriter(join(options.runDir, METRICS_FILE));
    this.clock = options.clock ?? (() => Date.now());
    this.warn = options.warn ?? ((message) => console.warn(message));
    const parts = [...this.backends.map((b) => b.description), ...(this.jsonl ? [this.jsonl.path] : [])];
    this.description = parts.join(' + ') || 'no tracking';
  }

  /** Backends still working, with their index. */
  private live(): [number, Tracker][] {
    return this.backends.map((b, i) => [i, b] as [number, Tracker]).filter(([i]) => !this.failed.has(i));
  }

  private async guard<T>(index: number, what: string, action: () => Promise<T>): Promise<T | undefined> {
    try {
      return await action();
    } catch (e) {
      this.failed.add(index);
      const local = this.jsonl ? `; metrics are still written to ${this.jsonl.path}` : '';
      this.warn(`warning: tracking to ${this.backends[index]!.description} failed during ${what}: ` +
        `${(e as Error).message ?? String(e)}. Training continues without it${local}.`);
      return undefined;
    }
  }

  /**
   * Returns the first working backend's run (runId '' when none works). `parentRunId` goes to every
   * backend unchanged, so nested runs are meant for one MLflow backend (what `openTracker` builds).
   */
  async start(options: StartRunOptions): Promise<RunInfo> {
    let primary: RunInfo | undefined;
    for (const [i, backend] of this.live()) {
      const info = await this.guard(i, 'start', () => backend.start(options));
      primary ??= info;
    }
    return primary ?? { runId: '', experimentId: '', artifactUri: '' };
  }

  async logParams(params: Record<string, ParamValue>): Promise<void> {
    for (const [i, backend] of this.live()) await this.guard(i, 'logParams', () => backend.logParams(params));
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void> {
    const ts = timestamp ?? this.clock();
    this.jsonl?.append(step, ts, metrics);
    for (const [i, backend] of this.live()) await this.guard(i, 'logMetrics', () => backend.logMetrics(metrics, step, ts));
  }

  async setTag(key: string, value: string): Promise<void> {
    for (const [i, backend] of this.live()) await this.guard(i, 'setTag', () => backend.setTag(key, value));
  }

  async logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    for (const [i, backend] of this.live()) await this.guard(i, 'logArtifact', () => backend.logArtifact(localPath, artifactPath));
  }

  async end(status: EndStatus = 'FINISHED'): Promise<void> {
    for (const [i, backend] of this.live()) await this.guard(i, 'end', () => backend.end(status));
  }
}
