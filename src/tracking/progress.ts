/**
 * Console progress for a training loop: a cli-progress bar with ETA and the latest metrics when
 * stdout is a terminal; plain lines every N steps or seconds when it is not (CI logs, pipes), where
 * a redrawn bar would be noise.
 */

import cliProgress from 'cli-progress';

/** The part of a stream progress needs (process.stdout, or a test double). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Last step number (the bar is full at `total`). */
  total: number;
  /** Shown first on each line, e.g. the stage name. */
  label?: string;
  /** Step the loop starts from (a resumed run); ETA counts from here. */
  startStep?: number;
  stream?: ProgressStream;
  /** Plain mode: print when this many steps have passed since the last line… */
  everySteps?: number;
  /** …or this many milliseconds. */
  everyMs?: number;
  /** Metric names to show, in order (default: all, in the order logged). */
  keys?: string[];
  /** Milliseconds; injected by tests. */
  clock?: () => number;
}

/** 0.5321 → "0.5321", 12.3456 → "12.35", 3e-4 → "3.00e-4", 123456 → "1.23e+5". */
export function formatMetricValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** `loss=0.5321 lr=3.00e-4`; `keys` picks and orders the metrics. */
export function formatMetrics(metrics: Record<string, number>, keys?: string[]): string {
  const names = keys ?? Object.keys(metrics);
  return names.filter((k) => metrics[k] !== undefined).map((k) => `${k}=${formatMetricValue(metrics[k]!)}`).join(' ');
}

/** 4_000 → "4s", 214_000 → "3m34s", 3_723_000 → "1h02m03s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(s)}s`;
  if (m > 0) return `${m}m${pad(s)}s`;
  return `${s}s`;
}

/** Remaining time from the mean step time so far. */
export function estimateRemainingMs(elapsedMs: number, stepsDone: number, stepsLeft: number): number {
  return stepsDone <= 0 ? NaN : (elapsedMs / stepsDone) * stepsLeft;
}

/** One plain progress line (no newline). */
export function progressLine(args: { label: string; step: number; total: number; elapsedMs: number; stepsDone: number;
  metrics: string }): string {
  const pct = args.total > 0 ? ((100 * args.step) / args.total).toFixed(1) : '0.0';
  const rate = args.elapsedMs > 0 ? (args.stepsDone / (args.elapsedMs / 1000)).toFixed(2) : '?';
  const eta = formatDuration(estimateRemainingMs(args.elapsedMs, args.stepsDone, args.total - args.step));
  const parts = [`${args.label}step ${args.step}/${args.total} (${pct}%)`];
  if (args.metrics !== '') parts.push(args.metrics);
  parts.push(`${rate} it/s`, `elapsed ${formatDuration(args.elapsedMs)}`, `ETA ${eta}`);
  return parts.join(' | ');
}

export class ConsoleProgress {
  private readonly total: number;
  private readonly label: string;
  private readonly startStep: number;
  private readonly stream: ProgressStream;
  private readonly everySteps: number;
  private readonly everyMs: number;
  private readonly keys: string[] | undefined;
  private readonly clock: () => number;
  private readonly startTime: number;
  private readonly bar: cliProgress.SingleBar | undefined;
  private lastPrintStep: number | undefined;
  private lastPrintTime: number;
  private lastStep: number;
  private lastMetrics: Record<string, number> = {};
  private stopped = false;

  constructor(options: ProgressOptions) {
    this.total = options.total;
    this.label = options.label === undefined || options.label === '' ? '' : `[${options.label}] `;
    this.startStep = options.startStep ?? 0;
    this.stream = options.stream ?? process.stdout;
    this.everySteps = options.everySteps ?? Math.max(1, Math.round(this.total / 20));
    this.everyMs = options.everyMs ?? 30_000;
    this.keys = options.keys;
    this.clock = options.clock ?? (() => Date.now());
    this.startTime = this.clock();
    this.lastPrintTime = this.startTime;
    this.lastStep = this.startStep;
    if (this.stream.isTTY === true) {
      this.bar = new cliProgress.SingleBar({
        format: `${this.label.replace(/[{}]/g, '')}{bar} {value}/{total} {percentage}% | ETA {eta_formatted} | {metrics}`,
        stream: this.stream as NodeJS.WritableStream,
        hideCursor: true,
        etaBuffer: 50,
        gracefulExit: true,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(this.total, this.startStep, { metrics: '' });
    }
  }

  /** Call once per optimizer step with that step's metrics. */
  update(step: number, metrics: Record<string, number> = {}): void {
    if (this.stopped) return;
    this.lastStep = step;
    this.lastMetrics = metrics;
    const text = formatMetrics(metrics, this.keys);
    if (this.bar !== undefined) {
      this.bar.update(step, { metrics: text });
      return;
    }
    const now = this.clock();
    const due = this.lastPrintStep === undefined || step - this.lastPrintStep >= this.everySteps ||
      now - this.lastPrintTime >= this.everyMs || step >= this.total;
    if (due) this.printLine(step, now, text);
  }

  private printLine(step: number, now: number, metrics: string): void {
    this.lastPrintStep = step;
    this.lastPrintTime = now;
    this.stream.write(progressLine({
      label: this.label, step, total: this.total, elapsedMs: now - this.startTime, stepsDone: step - this.startStep, metrics,
    }) + '\n');
  }

  /** Ends the bar (or prints the last line if it was not printed yet). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.bar !== undefined) {
      this.bar.stop();
      return;
    }
    if (this.lastPrintStep !== this.lastStep) this.printLine(this.lastStep, this.clock(), formatMetrics(this.lastMetrics, this.keys));
  }
}
