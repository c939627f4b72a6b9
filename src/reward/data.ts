/**
 * The reward stage's preference data: train and eval pairs read (JSONL, Arrow, Parquet), mixed across
 * files (data.mix), subset, split and tokenized with their Llama 2 margins.
 */
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { resolveDataPath } from '../paths.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import type { RewardConfig } from './config.js';
import type { MarginKind } from './loss.js';
import { readPreferences, tokenizePairs, type NumberedPreference, type TokenizedPair } from './pairs.js';

/** Train and eval pairs, tokenized with their margins; eval from its own file or a seeded split. */
export async function loadPairs(
  cfg: RewardConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (msg: string) => void,
): Promise<{ train: TokenizedPair[]; eval: TokenizedPair[]; trainCounts: Array<{ file: string; pairs: number }> }> {
  const marginKind = cfg.reward.margin as MarginKind;
  const read = async (file: string): Promise<{ file: string; rows: NumberedPreference[] }> => {
    const path = resolveDataPath(file);
    return { file: path, rows: await readPreferences(path, { onBadRow: cfg.data.on_bad_row, warn: log }) };
  };
  const tokenize = (file: string, rows: NumberedPreference[], what: string): TokenizedPair[] => {
    const { pairs, dropped } = tokenizePairs(tokenizer, rows, { file, template, readAt: cfg.reward.read_at, marginKind, maxLength: cfg.data.max_length, onWarning: log });
    if (dropped > 0) log(`reward: dropped ${dropped} ${what} pairs of ${file} with a side longer than data.max_length=${cfg.data.max_length} tokens`);
    return pairs;
  };

  // Rows keep the file they came from, so a bad row or a missing margin is reported in its own file.
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  const train = mixFiles(await Promise.all(trainFiles.map(read)), cfg.data.mix, cfg.train.seed ?? cfg.engine.seed, log);
  let trainRows = train.flatMap((t) => t.rows.map((row) => ({ file: t.file, row })));
  let evalRows: { file: string; row: NumberedPreference }[] = [];
  if (cfg.data.eval !== null) {
    const ev = await read(cfg.data.eval);
    evalRows = ev.rows.map((row) => ({ file: ev.file, row }));
  } else if (cfg.data.eval_fraction > 0) {
    const order = new Rng(cfg.engine.seed).shuffle(trainRows.map((_, i) => i));
    const evalCount = Math.round(trainRows.length * cfg.data.eval_fraction);
    const isEval = new Set(order.slice(0, evalCount));
    evalRows = trainRows.filter((_, i) => isEval.has(i));
    trainRows = trainRows.filter((_, i) => !isEval.has(i));
  }
  trainRows = sampleSubset(trainRows, cfg.data.max_train_pairs, cfg.train.seed ?? cfg.engine.seed);
  if (cfg.data.max_eval_pairs !== null) evalRows = evalRows.slice(0, cfg.data.max_eval_pairs);
  const trainCounts: Array<{ file: string; pairs: number }> = [];
  const tokenizeAll = (rows: { file: string; row: NumberedPreference }[], what: string): TokenizedPair[] => {
    const files = [...new Set(rows.map((r) => r.file))];
    const pairs = files.flatMap((file) => {
      const filePairs = tokenize(file, rows.filter((r) => r.file === file).map((r) => r.row), what);
      if (what === 'training') trainCounts.push({ file, pairs: filePairs.length });
      return filePairs;
    });
    if (pairs.length === 0 && what === 'training') throw new UserError(`${trainFiles.join(', ')}: no training pair fits data.max_length=${cfg.data.max_length}`);
    return pairs;
  };
  return { train: tokenizeAll(trainRows, 'training'), eval: tokenizeAll(evalRows, 'eval'), trainCounts };
}

/**
 * The data mix: with shares w_i (normalised) over files of n_i rows, the largest set with those
 * shares has T = min_i n_i / w_i rows, round(T·w_i) of them (a seeded subset) from file i.
 */
export function mixFiles<T extends { file: string; rows: unknown[] }>(files: T[], mix: readonly number[] | null, seed: number, log: (m: string) => void = () => undefined): T[] {
  if (mix === null) return files;
  if (mix.length !== files.length) {
    throw new UserError(`data.mix: one share per data.train file (${files.length} file${files.length === 1 ? '' : 's'}), got ${mix.length}`);
  }
  const total = mix.reduce((s, w) => s + w, 0);
  const shares = mix.map((w) => w / total);
  const size = Math.min(...files.map((f, i) => f.rows.length / shares[i]!));
  const mixed = files.map((f, i) => ({ ...f, rows: sampleSubset(f.rows, Math.round(size * shares[i]!), seed + i) }));
  log(`reward: data mix ${mixed.map((f, i) => `${f.rows.length} pairs of ${f.file} (${(100 * shares[i]!).toFixed(0)}%)`).join(', ')}`);
  return mixed;
}

/** At most `max` items, a seeded choice kept in file order (all of them when max is null). */
export function sampleSubset<T>(items: readonly T[], max: number | null, seed: number): T[] {
  if (max === null || items.length <= max) return items.slice();
  const chosen = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}
