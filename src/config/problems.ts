/**
 * Config problems: what is wrong, at which key, and where the user wrote it (file:line:col, or the
 * `key=value` override that set it). A `ConfigError` carries every problem found, so one run
 * shows them all.
 */
import { UserError } from '../errors.js';

/** Where a config value came from. */
export type ConfigLocation =
  | { kind: 'file'; file: string; line: number; col: number }
  | { kind: 'override'; text: string; index: number };

export interface ConfigProblem {
  where: ConfigLocation;
  /** Dotted key path, e.g. `optim.lr` or `optim.betas.1`; empty for the whole document. */
  key: string;
  message: string;
}

export function formatLocation(where: ConfigLocation): string {
  return where.kind === 'file' ? `${where.file}:${where.line}:${where.col}` : `override '${where.text}'`;
}

/** `configs/sft/x.yaml:12:5 optim.lr: expected number, received string` */
export function formatProblem(p: ConfigProblem): string {
  const key = p.key === '' ? '' : ` ${p.key}:`;
  return `${formatLocation(p.where)}${key} ${p.message}`;
}

/** File problems in reading order, then override problems in the order the overrides were given. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const rank = (w: ConfigLocation): [number, number, number] =>
    w.kind === 'file' ? [0, w.line, w.col] : [1, w.index, 0];
  return [...problems].sort((a, b) => {
    const ra = rank(a.where);
    const rb = rank(b.where);
    return ra[0] - rb[0] || ra[1] - rb[1] || ra[2] - rb[2];
  });
}

export function dottedKey(path: readonly (string | number)[]): string {
  return path.map(String).join('.');
}

/** Every problem of one config, one per line, sorted; the CLI prints the message and exits 2. */
export class ConfigError extends UserError {
  readonly problems: ConfigProblem[];
  constructor(problems: readonly ConfigProblem[], source?: string) {
    const sorted = sortProblems(problems);
    const count = sorted.length === 1 ? '1 problem' : `${sorted.length} problems`;
    const summary = source === undefined ? count : `${count} in ${source}`;
    super([...sorted.map(formatProblem), summary].join('\n'));
    this.name = 'ConfigError';
    this.problems = sorted;
  }
}
