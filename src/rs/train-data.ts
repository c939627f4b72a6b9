/** Step 5's data: the kept dialogues as training examples, with an optional seeded eval split. */
import { collateTrain, trainEvalSplit, type Example, type TokenBatch } from '../data/index.js';
import { UserError } from '../errors.js';
import { IGNORE_INDEX, tokenizeDialogue, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import type { RsConfig } from './config.js';
import type { PoolEntry } from './select.js';

/** How rejection sampling batches a kept dialogue: the reply survives truncation (keep_end). */
export function collateKept(rows: readonly Example[], cfg: RsConfig, padId: number): TokenBatch {
  return collateTrain(rows, { padId, maxLength: cfg.data.max_length, truncation: 'keep_end', padToMultipleOf: 8 });
}

/** Kept dialogues as training examples (loss on the reply only), an optional seeded eval split. */
export function trainingData(
  cfg: RsConfig,
  kept: readonly PoolEntry[],
  tokenizer: Tokenizer,
  template: TemplateName,
  log: (m: string) => void,
): { train: Example[]; evalBatches: TokenBatch[]; evalCount: number } {
  const nonEmpty = kept.filter((e) => e.reply.trim() !== '');
  if (nonEmpty.length < kept.length) log(`rs: ${kept.length - nonEmpty.length} prompts kept an empty reply; not trained on`);
  let examples = nonEmpty.map((e) => tokenizeDialogue(tokenizer, [...e.prompt, { role: 'assistant', content: e.reply }], { template, strategy: 'train_on_last' }));
  // keep_end truncation keeps the reply; an example needs a trained token after the first position.
  examples = examples.filter((ex) => ex.labels.slice(-cfg.data.max_length).slice(1).some((l) => l !== IGNORE_INDEX));
  let evalSet: Example[] = [];
  if (cfg.data.eval_split > 0) {
    if (cfg.data.eval_split >= examples.length) {
      throw new UserError(`data.eval_split: ${cfg.data.eval_split} rows held out, but only ${examples.length} dialogues were kept`);
    }
    ({ train: examples, eval: evalSet } = trainEvalSplit(examples, { seed: cfg.train.seed ?? cfg.engine.seed, evalSize: cfg.data.eval_split }));
  }
  if (examples.length === 0) throw new UserError('rs: no kept dialogue to train on');
  const evalRows = evalSet.slice(0, cfg.data.eval_max_rows ?? undefined);
  const evalBatches: TokenBatch[] = [];
  for (let i = 0; i < evalRows.length; i += cfg.train.batch_size) {
    evalBatches.push(collateKept(evalRows.slice(i, i + cfg.train.batch_size), cfg, tokenizer.padId));
  }
  return { train: examples, evalBatches, evalCount: evalSet.length };
}
