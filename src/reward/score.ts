/**
 * Score a dataset with a trained reward model: every row keeps its columns and gains the reward of
 * its text. Preference rows (prompt/chosen/rejected) gain `reward_chosen` and `reward_rejected`;
 * every other form (`messages`, `prompt` + `completion`, `text`) gains `reward`. JSONL, Arrow or
 * Parquet in and out, by extension.
 */
import { readAllRecords, writeRows, checkRow, type Message } from '../data/index.js';
import { UserError } from '../errors.js';
import { loadHfModel } from '../model/index.js';
import { readRewardReadAt } from '../model/io/reward-read.js';
import { loadTokenizer, scoredIds, tokenizeDialogue, type ReadAt, type TemplateName, type Tokenizer } from '../tokenizer/index.js';
import { scoreSequences } from '../model/score.js';
import { join } from 'node:path';
import { writeFileAtomic } from '../config/write.js';
import { REWARD_STATS_FILE, requireRewardStats } from '../model/io/reward-stats.js';
import { rewardStats } from './loss.js';
import { tokenizePreferenceSide } from './pairs.js';

export { scoreSequences } from '../model/score.js';

export interface ScoreOptions {
  template?: TemplateName | 'auto';
  batchSize?: number;
  /** Whiten with the folder's reward_stats.json: (r − mean) / std. */
  normalize?: boolean;
  /** Compute reward_stats.json from this data's rewards and write it into the model folder first (a TRL / OpenRLHF reward model has none). */
  writeStats?: boolean;
}

/** What to score in one row: one text (`reward`) or two (`reward_chosen`, `reward_rejected`). */
type RowTexts = { kind: 'single'; ids: number[] } | { kind: 'pair'; chosen: number[]; rejected: number[] };

/**
 * Token ids of what a row asks to be scored, ending where the model reads (`readAt`: a dialogue is
 * read at its last assistant turn's turn end, or at the last token of its rendering); a UserError
 * names the file and row when it is not scorable.
 */
export function rowTexts(tokenizer: Tokenizer, value: unknown, template: TemplateName, where: string, readAt: ReadAt): RowTexts {
  const obj = (value ?? {}) as Record<string, unknown>;
  if (obj.chosen != null || obj.rejected != null) {
    const c = checkRow('preference', value);
    if (!c.ok) throw new UserError(`${where}: ${c.issues.map((i) => `${i.field || 'row'}: ${i.reason}`).join('; ')}`);
    return {
      kind: 'pair',
      chosen: tokenizePreferenceSide(tokenizer, c.row.prompt, c.row.chosen, template, readAt),
      rejected: tokenizePreferenceSide(tokenizer, c.row.prompt, c.row.rejected, template, readAt),
    };
  }
  if (obj.messages != null) {
    const c = checkRow('sft', value);
    if (!c.ok) throw new UserError(`${where}: ${c.issues.map((i) => `${i.field || 'row'}: ${i.reason}`).join('; ')}`);
    const messages = (c.row as { messages: Message[] }).messages;
    const strategy = readAt === 'turn_end' ? 'train_on_last' : 'train_on_all';
    return { kind: 'single', ids: scoredIds(tokenizeDialogue(tokenizer, messages, { template, strategy }), readAt) };
  }
  if (obj.prompt != null && obj.completion != null) {
    const prompt = obj.prompt as string | Message[];
    const completion = obj.completion as string | Message[];
    if (typeof prompt !== typeof completion && (typeof prompt === 'string' || typeof completion === 'string')) {
      throw new UserError(`${where}: prompt and completion must both be strings or both be message lists`);
    }
    return { kind: 'single', ids: tokenizePreferenceSide(tokenizer, prompt, completion, template, readAt) };
  }
  if (typeof obj.text === 'string') return { kind: 'single', ids: tokenizePreferenceSide(tokenizer, undefined, obj.text, template, readAt) };
  throw new UserError(
    `${where}: nothing to score: expected "prompt"/"chosen"/"rejected", "messages", "prompt" + "completion", or "text" (found: ${Object.keys(obj).join(', ') || 'none'})`,
  );
}

/** Read `dataFile`, score every row with the reward model in `modelDir`, write `outFile`. Returns the row count. */
export async function scoreFile(modelDir: string, dataFile: string, outFile: string, opts: ScoreOptions = {}): Promise<number> {
  const tokenizer = await loadTokenizer(modelDir);
  const choice = opts.template ?? 'auto';
  const template: TemplateName = choice !== 'auto' ? choice : tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2';
  let stats = opts.normalize && !opts.writeStats ? requireRewardStats(modelDir, '--normalize', 'or score without --normalize') : null;

  const { rows, errors } = await readAllRecords(dataFile);
  if (errors.length > 0) throw new UserError(`${dataFile}: row ${errors[0]!.row}: ${errors[0]!.error}`);
  const readAt = readRewardReadAt(modelDir); // where the model was trained to read (reward_read.json; none: last token)
  const texts = rows.map((r) => rowTexts(tokenizer, r.value, template, `${dataFile}: row ${r.row}`, readAt));
  // One flat list of sequences, so batches are full whatever the mix of row forms.
  const seqs: number[][] = texts.flatMap((t) => (t.kind === 'single' ? [t.ids] : [t.chosen, t.rejected]));

  const model = loadHfModel(modelDir);
  let rewards: number[];
  try {
    if (!model.scoreHead) throw new UserError(`${modelDir}: not a reward model (no score.weight; train one with rlhf reward)`);
    rewards = scoreSequences(model, seqs, { padId: tokenizer.padId, batchSize: opts.batchSize ?? 32 });
  } finally {
    model.dispose();
  }
  if (opts.writeStats) {
    // As the reward stage computes them: every reward of the data (both sides of a pair), population std.
    const s = rewardStats(rewards);
    if (!(s.std > 0)) throw new UserError(`${dataFile}: the rewards of these rows have no spread (std 0); --write-stats needs varied rows`);
    writeFileAtomic(join(modelDir, REWARD_STATS_FILE), JSON.stringify(s, null, 2) + '\n');
    if (opts.normalize) stats = s;
  }
  const norm = (r: number) => (stats ? (r - stats.mean) / Math.max(stats.std, 1e-8) : r);

  let k = 0;
  const out = rows.map((r, i) => {
    const row = { ...(r.value as Record<string, unknown>) };
    if (texts[i]!.kind === 'single') row.reward = norm(rewards[k++]!);
    else {
      row.reward_chosen = norm(rewards[k++]!);
      row.reward_rejected = norm(rewards[k++]!);
    }
    return row;
  });
  return writeRows(outFile, out);
}
