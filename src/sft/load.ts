/** SFT's datasets: rows read (JSONL, Arrow, Parquet; TRL columns), tokenized, split, packed and batched. */
import { loadDataset, trainEvalSplit, type Example, type TokenBatch } from '../data/index.js';
import { UserError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { SftConfig } from './config.js';
import { buildUnits, collateUnits, keepTrainable, pickTemplate, resolveDataPath, tokenizeSftRow, type TrainUnits } from './data.js';

/** Train examples as units for the cursor, and eval batches (fixed order, padded per batch). */
export async function loadSftData(
  cfg: SftConfig,
  tokenizer: Tokenizer,
  template: ReturnType<typeof pickTemplate>,
  log: (m: string) => void,
): Promise<{ units: TrainUnits; evalBatches: TokenBatch[] }> {
  const read = async (path: string): Promise<Example[]> => {
    const rows = await loadDataset(resolveDataPath(path), 'sft', { onBadRow: cfg.data.on_bad_row, warn: log });
    return rows.map((row) => tokenizeSftRow(tokenizer, row, { template, strategy: cfg.data.strategy }));
  };
  const trainFiles = typeof cfg.data.train === 'string' ? [cfg.data.train] : cfg.data.train;
  let train = (await Promise.all(trainFiles.map(read))).flat();
  let evalSet: Example[] = [];
  if (cfg.data.eval !== null) evalSet = await read(cfg.data.eval);
  else if (cfg.data.eval_split > 0) {
    if (cfg.data.eval_split >= train.length) {
      throw new UserError(`data.eval_split: ${cfg.data.eval_split} rows held out, but ${trainFiles.join(', ')} has only ${train.length}`);
    }
    ({ train, eval: evalSet } = trainEvalSplit(train, { seed: cfg.train.seed ?? cfg.engine.seed, evalSize: cfg.data.eval_split }));
  }
  const { kept, dropped } = keepTrainable(train, cfg.data.max_length, cfg.data.truncation);
  if (dropped > 0) log(`sft: ${dropped} training examples have no trained token within data.max_length=${cfg.data.max_length}; dropped`);
  if (kept.length === 0) throw new UserError(`${trainFiles.join(', ')}: no example has a trained token within data.max_length=${cfg.data.max_length}`);
  const units = buildUnits(kept, { packing: cfg.data.packing, maxLength: cfg.data.max_length, truncation: cfg.data.truncation });

  const evalKept = keepTrainable(evalSet, cfg.data.max_length, cfg.data.truncation).kept.slice(0, cfg.data.eval_max_rows ?? undefined);
  const evalUnits = buildUnits(evalKept, { packing: false, maxLength: cfg.data.max_length, truncation: cfg.data.truncation });
  const evalBatches: TokenBatch[] = [];
  for (let i = 0; i < evalKept.length; i += cfg.train.batch_size) {
    const indices = Array.from({ length: Math.min(cfg.train.batch_size, evalKept.length - i) }, (_, k) => i + k);
    evalBatches.push(collateUnits(evalUnits, indices, { padId: tokenizer.padId, maxLength: cfg.data.max_length, truncation: cfg.data.truncation }));
  }
  return { units, evalBatches };
}
