/**
 * Experiment tracking: pick the MLflow backend from `tracking.uri` and wrap it with the local
 * metrics.jsonl copy.
 *
 *   const tracker = openTracker({ uri: cfg.tracking.uri, runDir });
 *   const run = await tracker.start({ experiment: 'rlhf-kit', runName: 'sft' });
 *   await tracker.logParams(flattenParams(config));
 *   await tracker.logMetrics({ loss, lr }, step);
 *   await tracker.end('FINISHED');
 */

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FanOutTracker } from './fan-out.js';
import { FileStoreTracker } from './file-store.js';
import { authHeadersFromEnv, type RestClientOptions } from './rest-client.js';
import { RestTracker } from './rest-tracker.js';
import type { RunContext, Tracker } from './types.js';

export * from './types.js';
export { flattenParams, sanitizeKey, truncateCodePoints, MAX_PARAM_VALUE_LENGTH, type ParamValue } from './params.js';
export { FileStoreTracker, MlflowFileStore } from './file-store.js';
export { RestTracker } from './rest-tracker.js';
export { MlflowRestClient, MlflowRestError } from './rest-client.js';
export { FanOutTracker } from './fan-out.js';
export { METRICS_FILE, readMetricsJsonl, metricsJsonLine } from './metrics-jsonl.js';
export { ConsoleProgress, formatDuration, formatMetrics, type ProgressOptions } from './progress.js';
export { defaultRunContext } from './context.js';

export interface OpenTrackerOptions {
  /**
   * `mlruns` or any folder path / `file:` URI → MLflow file store; `http(s)://host:port` → MLflow
   * server; `null`, `''` or `none` → only metrics.jsonl.
   */
  uri?: string | null;
  /** The stage's run folder (metrics.jsonl). */
  runDir?: string;
  context?: Partial<RunContext>;
  warn?: (message: string) => void;
  /** REST transport knobs (tests inject fetch/sleep). */
  rest?: Omit<RestClientOptions, 'baseUrl'> & { flushIntervalMs?: number };
}

/** The backend for a tracking URI, or undefined for "none". */
export function trackerForUri(uri: string | null | undefined, options: Pick<OpenTrackerOptions, 'context' | 'rest'> = {}):
  Tracker | undefined {
  if (uri === null || uri === undefined || uri === '' || uri === 'none') return undefined;
  if (/^https?:\/\//i.test(uri)) {
    return new RestTracker({ headers: authHeadersFromEnv(), ...options.rest, uri, context: options.context });
  }
  const root = uri.startsWith('file:') ? fileURLToPath(uri) : resolve(uri);
  return new FileStoreTracker({ root, context: options.context });
}

export function openTracker(options: OpenTrackerOptions): FanOutTracker {
  const backend = trackerForUri(options.uri, options);
  const fanOut: ConstructorParameters<typeof FanOutTracker>[0] = { backends: backend ? [backend] : [] };
  if (options.runDir !== undefined) fanOut.runDir = options.runDir;
  if (options.context?.clock !== undefined) fanOut.clock = options.context.clock;
  if (options.warn !== undefined) fanOut.warn = options.warn;
  return new FanOutTracker(fanOut);
}
