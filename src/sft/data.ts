/**
 * SFT rows → token examples → training units (one example per row, or packed rows) → micro-batches.
 * Everything here is deterministic and tensor-free; the recipe turns batches into tensors.
 */
import {
  collatePacked,
  collateTrain,
  packExamples,
  type Example,
  type PackedRow,
  type SftRow,
  type TokenBatch,
  type Truncation,
} from '../data/index.js';
import { IGNORE_INDEX, tokenizeDialogue, tokenizePromptCompletion, type LabelStrategy, type TemplateName, type Tokenizer } from '../tokenizer/index.js';

// Shared with every stage that reads shipped data or picks a chat template (they live in shared blocks).
export { resolveDataPath } from '../paths.js';
export { pickTemplate } from '../tokenizer/index.js';

/** One SFT row as labelled tokens (labels aligned with inputIds, −100 = no loss). */
export function tokenizeSftRow(tokenizer: Tokenizer, row: SftRow, opts: { template: TemplateName; strategy: LabelStrategy }): Example {
  if ('messages' in row) return tokenizeDialogue(tokenizer, row.messages, { template: opts.template, strategy: opts.strategy });
  if ('prompt' in row) return tokenizePromptCompletion(tokenizer, row.prompt, row.completion, { template: opts.template });
  // Plain text: continued pretraining on every token, closed by EOS.
  const ids = tokenizer.encode(row.text, { addSpecialTokens: true });
  if (ids[ids.length - 1] !== tokenizer.eosId) ids.push(tokenizer.eosId);
  return { inputIds: ids, labels: ids.slice() };
}

/** Examples that still have a trained token after truncation (others would add nothing but padding). */
export function keepTrainable(examples: readonly Example[], maxLength: number, truncation: Truncation): { kept: Example[]; dropped: number } {
  const kept: Example[] = [];
  for (const ex of examples) {
    const labels = truncation === 'keep_start' ? ex.labels.slice(0, maxLength) : ex.labels.slice(-maxLength);
    // The first position's label is never predicted (nothing comes before it).
    if (labels.slice(1).some((l) => l !== IGNORE_INDEX)) kept.push(ex);
  }
  return { kept, dropped: examples.length - kept.length };
}

/** What the data cursor walks over: examples, or packed rows of several examples. */
export type TrainUnits = { packed: false; items: Example[] } | { packed: true; items: PackedRow[] };

export function buildUnits(examples: Example[], opts: { packing: boolean; maxLength: number; truncation: Truncation }): TrainUnits {
  if (!opts.packing) return { packed: false, items: examples };
  return { packed: true, items: packExamples(examples, { maxLength: opts.maxLength, truncation: opts.truncation }) };
}

/** Collate the units at `indices` into a right-padded batch (lengths rounded up to a multiple of 8: fewer shapes). */
export function collateUnits(
  units: TrainUnits,
  indices: readonly number[],
  opts: { padId: number; maxLength: number; truncation: Truncation },
): TokenBatch {
  if (units.packed) return collatePacked(indices.map((i) => units.items[i]!), { padId: opts.padId });
  return collateTrain(
    indices.map((i) => units.items[i]!),
    { padId: opts.padId, maxLength: opts.maxLength, truncation: opts.truncation, padToMultipleOf: 8 },
  );
}
