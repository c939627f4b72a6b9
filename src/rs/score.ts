/**
 * The one place rejection sampling scores replies with a reward model: each prompt + reply is
 * tokenized as the reward stage tokenizes a preference side (prompt messages, then the reply as an
 * assistant turn, through the chat template) and scored by `scoreSequences` (src/model/score.ts),
 * read where the model records it reads (reward_read.json: the reply's turn end, or the last token
 * of the full rendering for a model trained elsewhere). Rewards are raw (not whitened): only
 * their order within a prompt matters for selection, and the curve is in the model's own units.
 */
import { UserError } from '../errors.js';
import type { Message } from '../data/schemas.js';
import { loadHfModel } from '../model/index.js';
import { scoreSequences } from '../model/score.js';
import { readRewardReadAt } from '../model/io/reward-read.js';
import { loadTokenizer, pickTemplate, scoredIds, tokenizePromptCompletion, type TemplateName } from '../tokenizer/index.js';
import type { ReplyScorer } from './sampling.js';

export async function rewardModelScorer(
  dir: string,
  opts: { template: TemplateName | 'auto'; batchSize: number },
): Promise<{ score: ReplyScorer; dispose: () => void }> {
  const tokenizer = await loadTokenizer(dir);
  const template = pickTemplate(opts.template, tokenizer);
  const model = loadHfModel(dir);
  if (!model.scoreHead) {
    model.dispose();
    throw new UserError(`model.reward_model: ${dir} has no score.weight (not a reward model; run the reward stage)`);
  }
  const readAt = readRewardReadAt(dir);
  const score: ReplyScorer = (prompts: readonly Message[][], replies: readonly string[]) => {
    const seqs = prompts.map((p, i) => {
      // An empty reply (the turn ended at once) is scored as a blank turn: the template needs some content.
      const reply: Message = { role: 'assistant', content: replies[i]! === '' ? ' ' : replies[i]! };
      return scoredIds(tokenizePromptCompletion(tokenizer, p, [reply], { template }), readAt);
    });
    return scoreSequences(model, seqs, { padId: tokenizer.padId, batchSize: opts.batchSize });
  };
  return { score, dispose: () => model.dispose() };
}
