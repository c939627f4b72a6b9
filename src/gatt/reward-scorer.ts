/**
 * A `ReplyScorer` backed by a reward-model folder as the reward stage writes it (backbone +
 * `score.weight`, tokenizer files): each prompt + reply is rendered as a dialogue, exactly as
 * `rlhf reward score` renders a `messages` row, and scored where the model records it reads
 * (reward_read.json: the reply's turn end; none: the last token). Used for best-of-K
 * sampling during synthesis (Llama 2's rejection sampling, in miniature). Only the ranking of a
 * prompt's candidates matters, so rewards are not whitened.
 */
import { UserError } from '../errors.js';
import { loadHfModel } from '../model/index.js';
import { scoreSequences } from '../model/score.js';
import { readRewardReadAt } from '../model/io/reward-read.js';
import { loadTokenizer, scoredIds, tokenizeDialogue, type ChatMessage, type TemplateName } from '../tokenizer/index.js';
import { trimHistory } from './history.js';
import type { ReplyScorer } from './sampler.js';

export async function rewardModelScorer(
  dir: string,
  opts: { template: TemplateName | 'auto'; batchSize: number; maxTokens?: number },
): Promise<{ score: ReplyScorer; dispose: () => void }> {
  const tokenizer = await loadTokenizer(dir);
  const template: TemplateName = opts.template === 'auto' ? (tokenizer.chatTemplate !== undefined ? 'tokenizer' : 'llama2') : opts.template;
  const model = loadHfModel(dir);
  if (!model.scoreHead) {
    model.dispose();
    throw new UserError(`gatt.reward_model: ${dir} has no score.weight (not a reward model; run the reward stage)`);
  }
  const maxTokens = opts.maxTokens ?? model.config.max_position_embeddings;
  const readAt = readRewardReadAt(dir);
  const strategy = readAt === 'turn_end' ? 'train_on_last' : 'train_on_all';
  const encode = (messages: readonly ChatMessage[]) => scoredIds(tokenizeDialogue(tokenizer, messages, { template, strategy }), readAt);
  const score: ReplyScorer = async (prompts, replies) => {
    const seqs = prompts.map((p, i) => {
      const dialogue: ChatMessage[] = [...p, { role: 'assistant', content: replies[i]! === '' ? ' ' : replies[i]! }];
      return encode(trimHistory(dialogue, (m) => encode(m).length, maxTokens).messages);
    });
    return scoreSequences(model, seqs, { padId: tokenizer.padId, batchSize: opts.batchSize });
  };
  return { score, dispose: () => model.dispose() };
}
