/** DPO's preference pairs: read (JSONL, Arrow, Parquet; TRL columns), split, subsampled and tokenized. */
import { readPreferences, type NumberedPreference } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { resolveDataPath } from '../paths.js';
import type { TemplateName, Tokenizer } from '../tokenizer/index.js';
import type { Message } from '../data/index.js';
import { lossTypes, lossWeights, type DpoConfig } from './config.js';
import { tokenizeDpoPairs, type DpoPair } from './data.js';
import { readEvalPrompts } from './judge.js';

/** Train and eval pairs, tokenized (eval from its own file or a seeded split of train), and the prompts to judge. */
export async function loadDpoData(
  cfg: DpoConfig,
  tokenizer: Tokenizer,
  template: TemplateName,
  opts: { judged: boolean; log: (msg: string) => void },
): Promise<{ train: DpoPair[]; eval: DpoPair[]; prompts: Message[][] }> {
  const { log } = opts;
  type Row = { file: string; row: NumberedPreference };
  const read = async (file: string): Promise<Row[]> => {
    const path = resolveDataPath(file);
    return (await readPreferences(path, { onBadRow: cfg.data.on_bad_row, warn: log })).map((row) => ({ file: path, row }));
  };
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let trainRows = (await Promise.all(trainFiles.map(read))).flat();
  let evalRows: Row[] = [];
  if (cfg.data.eval !== null) evalRows = await read(cfg.data.eval);
  else if (cfg.data.eval_fraction > 0) {
    const order = new Rng(cfg.engine.seed).shuffle(trainRows.map((_, i) => i));
    const isEval = new Set(order.slice(0, Math.round(trainRows.length * cfg.data.eval_fraction)));
    evalRows = trainRows.filter((_, i) => isEval.has(i));
    trainRows = trainRows.filter((_, i) => !isEval.has(i));
  }
  trainRows = sampleSubset(trainRows, cfg.data.max_train_pairs, cfg.train.seed ?? cfg.engine.seed);
  if (cfg.data.max_eval_pairs !== null) evalRows = evalRows.slice(0, cfg.data.max_eval_pairs);
  // Rows keep the file they came from, so a problem is reported in its own file.
  const tokenize = (rows: Row[], what: string): DpoPair[] =>
    [...new Set(rows.map((r) => r.file))].flatMap((file) => {
      const { pairs, dropped } = tokenizeDpoPairs(tokenizer, rows.filter((r) => r.file === file).map((r) => r.row), {
        file, template, maxLength: cfg.data.max_length, strengthWeights: cfg.dpo.strength_weights, onWarning: log,
      });
      if (dropped > 0) log(`dpo: dropped ${dropped} ${what} pairs of ${file} with a side longer than data.max_length=${cfg.data.max_length} tokens`);
      return pairs;
    });
  const train = tokenize(trainRows, 'training');
  if (train.length === 0) throw new UserError(`${trainFiles.join(', ')}: no training pair fits data.max_length=${cfg.data.max_length}`);
  const evalPairs = tokenize(evalRows, 'eval');
  // Held-out prompts are answered and judged only with a judge (passed in) and eval.judge on.
  const prompts = opts.judged && cfg.data.eval_prompts !== null ? await readEvalPrompts(cfg.data.eval_prompts, cfg.data.eval_limit, log) : [];
  const settings = { types: lossTypes(cfg.dpo), weights: lossWeights(cfg.dpo) };
  log(`dpo: ${train.length} training pairs, ${evalPairs.length} eval pairs, ${prompts.length} judged prompts; ` +
    `loss ${settings.types.map((t, i) => `${settings.weights[i]}·${t}`).join(' + ')}, β ${cfg.dpo.beta}`);
  return { train, eval: evalPairs, prompts };
}

/** At most `max` items, a seeded choice kept in file order (all of them when max is null). */
function sampleSubset<T>(items: readonly T[], max: number | null, seed: number): T[] {
  if (max === null || items.length <= max) return items.slice();
  const chosen = new Rng(seed).shuffle(items.map((_, i) => i)).slice(0, max).sort((a, b) => a - b);
  return chosen.map((i) => items[i]!);
}
