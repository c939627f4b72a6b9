/**
 * An MLflow tracking store on the local disk, laid out byte for byte as MLflow's `FileStore`
 * (mlflow/store/tracking/file_store.py) writes it, so `mlflow ui --backend-store-uri ./mlruns`
 * shows our runs:
 *
 *   mlruns/.trash/
 *   mlruns/0/meta.yaml                       experiment 0 "Default"
 *   mlruns/<exp>/meta.yaml                   artifact_location, creation_time, experiment_id, …
 *   mlruns/<exp>/<run>/meta.yaml             artifact_uri, end_time, …, status (int), user_id
 *   mlruns/<exp>/<run>/metrics/<key>         lines "<timestamp_ms> <value> <step>"; `a/b` is a subfolder
 *   mlruns/<exp>/<run>/params/<key>          the value, no newline
 *   mlruns/<exp>/<run>/tags/<key>            the value, no newline
 *   mlruns/<exp>/<run>/artifacts/
 */

import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import { defaultRunContext } from './context.js';
import { MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH, paramText, sanitizeKey, truncateCodePoints, type ParamValue } from './params.js';
import { pathToFileUri, pythonFloatRepr } from './pyformat.js';
import { dumpFlatYaml } from './pyyaml.js';
import { RUN_STATUS_CODES, type EndStatus, type RunContext, type RunInfo, type RunStatus, type StartRunOptions, type Tracker } from './types.js';

const TRASH = '.trash';
const META = 'meta.yaml';
export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';
/** mlflow.entities.SourceType.LOCAL — the file store writes it for every run. */
const SOURCE_TYPE_LOCAL = 4;

/** A run as the store remembers it between calls. */
export interface FileRun {
  runId: string;
  experimentId: string;
  runDir: string;
  artifactUri: string;
  runName: string;
  userId: string;
  startTime: number;
  endTime: number | null;
  status: RunStatus;
}

/** Writes meta.yaml atomically (temp file + rename), as MLflow's overwrite_yaml does. */
function writeYamlFile(path: string, mapping: Parameters<typeof dumpFlatYaml>[0]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, dumpFlatYaml(mapping), 'utf8');
  renameSync(tmp, path);
}

function readMeta(dir: string): Record<string, unknown> | undefined {
  const path = join(dir, META);
  if (!existsSync(path)) return undefined;
  const parsed: unknown = parseYaml(readFileSync(path, 'utf8'));
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
}

/** Sub-folders of `dir` whose names are experiment ids (digits). */
function experimentDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
    .map((e) => e.name);
}

/** The low-level store: one method per MLflow FileStore operation we need, synchronous. */
export class MlflowFileStore {
  readonly root: string;
  private readonly clock: () => number;

  constructor(root: string, clock: () => number) {
    this.root = resolve(root);
    this.clock = clock;
  }

  /** Like FileStore.__init__: a new root gets experiment 0 "Default"; `.trash/` always exists. */
  ensureRoot(): void {
    if (!existsSync(this.root)) {
      mkdirSync(this.root, { recursive: true });
      this.writeExperiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME);
    }
    mkdirSync(join(this.root, TRASH), { recursive: true });
  }

  private writeExperiment(id: string, name: string): void {
    const dir = join(this.root, id);
    mkdirSync(dir, { recursive: true });
    const now = this.clock();
    writeYamlFile(join(dir, META), {
      artifact_location: `${pathToFileUri(this.root)}/${id}`,
      creation_time: now,
      experiment_id: id,
      last_update_time: now,
      lifecycle_stage: 'active',
      name,
    });
  }

  /** The id of the active experiment with this name, if any. */
  experimentIdByName(name: string): string | undefined {
    return experimentDirs(this.root).find((id) => readMeta(join(this.root, id))?.name === name);
  }

  /** Get-or-create by name. New experiments take the next free integer id. */
  experimentIdFor(name: string): string {
    this.ensureRoot();
    const existing = this.experimentIdByName(name);
    if (existing !== undefined) return existing;
    const trash = join(this.root, TRASH);
    const deleted = experimentDirs(trash).find((id) => readMeta(join(trash, id))?.name === name);
    if (deleted !== undefined) {
      throw new UserError(`MLflow experiment '${name}' is deleted (${join(trash, deleted)}): restore it, ` +
        `or remove it from ${trash} to reuse the name`);
    }
    const ids = [...experimentDirs(this.root), ...experimentDirs(trash)].map(Number);
    const id = String(Math.max(-1, ...ids) + 1);
    this.writeExperiment(id, name);
    return id;
  }

  private experimentArtifactLocation(experimentId: string): string {
    const location = readMeta(join(this.root, experimentId))?.artifact_location;
    return typeof location === 'string' ? location : `${pathToFileUri(this.root)}/${experimentId}`;
  }

  createRun(args: { experimentId: string; runId: string; userId: string; runName: string; startTime: number;
    tags: Record<string, string> }): FileRun {
    if (!/^[a-zA-Z0-9][\w-]{0,255}$/.test(args.runId)) throw new Error(`invalid MLflow run id '${args.runId}'`);
    const runDir = join(this.root, args.experimentId, args.runId);
    if (existsSync(runDir)) throw new Error(`MLflow run folder ${runDir} already exists`);
    const run: FileRun = {
      runId: args.runId,
      experimentId: args.experimentId,
      runDir,
      artifactUri: `${this.experimentArtifactLocation(args.experimentId)}/${args.runId}/artifacts`,
      runName: args.runName,
      userId: args.userId,
      startTime: args.startTime,
      endTime: null,
      status: 'RUNNING',
    };
    mkdirSync(runDir, { recursive: true });
    this.writeRunMeta(run);
    for (const sub of ['metrics', 'params', 'artifacts']) mkdirSync(join(runDir, sub), { recursive: true });
    for (const [key, value] of Object.entries(args.tags)) this.setTag(run, key, value);
    return run;
  }

  /** `_make_persisted_run_info_dict`: RunInfo fields + the legacy source fields MLflow still writes. */
  private writeRunMeta(run: FileRun): void {
    writeYamlFile(join(run.runDir, META), {
      artifact_uri: run.artifactUri,
      end_time: run.endTime,
      entry_point_name: '',
      experiment_id: run.experimentId,
      lifecycle_stage: 'active',
      run_id: run.runId,
      run_name: run.runName,
      run_uuid: run.runId,
      source_name: '',
      source_type: SOURCE_TYPE_LOCAL,
      source_version: '',
      start_time: run.startTime,
      status: RUN_STATUS_CODES[run.status],
      tags: [],
      user_id: run.userId,
    });
  }

  private entryPath(run: FileRun, folder: 'metrics' | 'params' | 'tags', key: string): string {
    const path = join(run.runDir, folder, sanitizeKey(key));
    mkdirSync(dirname(path), { recursive: true });
    return path;
  }

  logMetric(run: FileRun, key: string, value: number, timestamp: number, step: number): void {
    // MLflow reads both back with int(): a fractional one would make the whole run unreadable.
    if (!Number.isInteger(step) || !Number.isInteger(timestamp)) {
      throw new Error(`metric '${key}': step (${step}) and timestamp (${timestamp}) must be integers`);
    }
    appendFileSync(this.entryPath(run, 'metrics', key), `${timestamp} ${pythonFloatRepr(value)} ${step}\n`);
  }

  /** Params are immutable in MLflow: the same value again is fine, a different one is an error. */
  logParam(run: FileRun, key: string, value: ParamValue): void {
    const path = this.entryPath(run, 'params', key);
    const text = truncateCodePoints(paramText(value), MAX_PARAM_VALUE_LENGTH);
    if (existsSync(path)) {
      const current = readFileSync(path, 'utf8');
      if (current !== text) {
        throw new Error(`MLflow param '${key}' was already logged as '${current}' for run ${run.runId}; ` +
          `changing it to '${text}' is not allowed`);
      }
      return;
    }
    writeFileSync(path, text);
  }

  /** Setting `mlflow.runName` also renames the run in meta.yaml, as MLflow does. */
  setTag(run: FileRun, key: string, value: string): void {
    writeFileSync(this.entryPath(run, 'tags', key), truncateCodePoints(value, MAX_TAG_VALUE_LENGTH));
    if (key === 'mlflow.runName' && value !== '' && value !== run.runName) {
      run.runName = value;
      this.writeRunMeta(run);
    }
  }

  updateRun(run: FileRun, status: RunStatus, endTime: number | null): void {
    run.status = status;
    if (endTime !== null) run.endTime = endTime;
    this.writeRunMeta(run);
  }

  /** Copies a file or folder to `artifacts/[artifactPath/]<basename>`. */
  copyArtifact(run: FileRun, localPath: string, artifactPath?: string): void {
    if (!run.artifactUri.startsWith('file:')) {
      throw new Error(`artifact location ${run.artifactUri} of run ${run.runId} is not a local folder`);
    }
    const artifactRoot = fileURLToPath(run.artifactUri);
    const relative = artifactPath === undefined || artifactPath === '' ? [] : artifactPath.split('/').filter((s) => s !== '' && s !== '.');
    if (relative.includes('..')) throw new Error(`artifact path '${artifactPath}' must stay inside the run's artifacts`);
    const dest = join(artifactRoot, ...relative, basename(resolve(localPath)));
    mkdirSync(dirname(dest), { recursive: true });
    if (statSync(localPath).isDirectory()) cpSync(localPath, dest, { recursive: true });
    else cpSync(localPath, dest);
  }
}

/** The standard tags MLflow's fluent `start_run` sets (user, source, name, parent). */
export function standardRunTags(context: RunContext, options: StartRunOptions): Record<string, string> {
  return {
    ...(options.tags ?? {}),
    'mlflow.user': context.user,
    'mlflow.source.name': context.sourceName,
    'mlflow.source.type': 'LOCAL',
    'mlflow.runName': options.runName,
    ...(options.parentRunId !== undefined ? { 'mlflow.parentRunId': options.parentRunId } : {}),
  };
}

/** Tracker over a local `mlruns/` folder; one active run at a time. */
export class FileStoreTracker implements Tracker {
  readonly description: string;
  readonly store: MlflowFileStore;
  private readonly context: RunContext;
  private run: FileRun | undefined;

  constructor(options: { root: string; context?: Partial<RunContext> }) {
    this.context = defaultRunContext(options.context);
    this.store = new MlflowFileStore(options.root, this.context.clock);
    this.description = `MLflow file store at ${this.store.root}`;
  }

  private active(): FileRun {
    if (this.run === undefined) throw new Error('tracking: no active run (call start first)');
    return this.run;
  }

  async start(options: StartRunOptions): Promise<RunInfo> {
    if (this.run !== undefined && this.run.status === 'RUNNING') throw new Error(`tracking: run ${this.run.runId} is still active; open a separate tracker for a nested run`);
    const experimentId = this.store.experimentIdFor(options.experiment);
    this.run = this.store.createRun({
      experimentId,
      runId: this.context.newRunId(),
      userId: this.context.user,
      runName: options.runName,
      startTime: this.context.clock(),
      tags: standardRunTags(this.context, options),
    });
    return { runId: this.run.runId, experimentId, artifactUri: this.run.artifactUri };
  }

  async logParams(params: Record<string, ParamValue>): Promise<void> {
    const run = this.active();
    for (const [key, value] of Object.entries(params)) this.store.logParam(run, key, value);
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestamp?: number): Promise<void> {
    const run = this.active();
    const ts = timestamp ?? this.context.clock();
    for (const [key, value] of Object.entries(metrics)) this.store.logMetric(run, key, value, ts, step);
  }

  async setTag(key: string, value: string): Promise<void> {
    this.store.setTag(this.active(), key, value);
  }

  async logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    this.store.copyArtifact(this.active(), localPath, artifactPath);
  }

  async end(status: EndStatus = 'FINISHED'): Promise<void> {
    const run = this.active();
    this.store.updateRun(run, status, this.context.clock());
  }
}
