/** The tracking interface the recipes use; implemented by the MLflow file store, REST and the fan-out. */

import type { ParamValue } from './params.js';

/** MLflow run states and the integer codes the file store writes (mlflow/entities/run_status.py). */
export const RUN_STATUS_CODES = {
  RUNNING: 1,
  SCHEDULED: 2,
  FINISHED: 3,
  FAILED: 4,
  KILLED: 5,
} as const;

export type RunStatus = keyof typeof RUN_STATUS_CODES;
/** A run ends in one of these. */
export type EndStatus = 'FINISHED' | 'FAILED' | 'KILLED';

export interface StartRunOptions {
  /** Experiment name; created if missing. */
  experiment: string;
  /** Shown in the MLflow UI (`mlflow.runName`). */
  runName: string;
  /** A run id returned by `start` of the same tracker: makes this a nested run (`mlflow.parentRunId`). */
  parentRunId?: string;
  /** Extra run tags (e.g. `stage: sft`). */
  tags?: Record<string, string>;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  /** Where the run's artifacts live (`file:///…/artifacts` or `mlflow-artifacts:/…`). */
  artifactUri: string;
}

/**
 * One tracker object follows one run at a time: `start`, log…, `end`. For a nested run (a pipeline
 * parent with one child per stage) open another tracker and pass the parent's `runId`.
 */
export interface Tracker {
  /** Human words for warnings: "MLflow file store at /x/mlruns". */
  readonly description: string;
  start(options: StartRunOptions): Promise<RunInfo>;
  /** Flat `key → value`; use `flattenParams` for nested configs. Values are cut to MLflow's 6000 chars. */
  logParams(params: Record<string, ParamValue>): Promise<void>;
  /** `timestamp` (ms since epoch) defaults to the tracker's clock. */
  logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void>;
  setTag(key: string, value: string): Promise<void>;
  /** A file or folder, placed at `artifacts/[artifactPath/]<basename>`. */
  logArtifact(localPath: string, artifactPath?: string): Promise<void>;
  end(status?: EndStatus): Promise<void>;
}

/** Injected so tests are deterministic: time, run ids, who and what started the run. */
export interface RunContext {
  /** Milliseconds since the epoch. */
  clock: () => number;
  /** 32 lowercase hex characters, as `uuid.uuid4().hex`. */
  newRunId: () => string;
  /** `mlflow.user` and the run's `user_id`. */
  user: string;
  /** `mlflow.source.name` (MLflow writes the script path, `sys.argv[0]`). */
  sourceName: string;
}
