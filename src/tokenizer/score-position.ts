/**
 * Where a reward model reads a reply's score. One rule for every stage that scores (reward
 * training, `rlhf reward score`, PPO, rejection sampling, GAtt's best-of-K, evaluation):
 *
 *   turn_end    at the template's turn-end token of the last assistant turn (`</s>` for llama2,
 *               `<|im_end|>` for chatml — not the `\n` chatml writes after it). This is where PPO
 *               and every sampler stop generating, so training and use read the same token.
 *   last_token  at the last token of the full rendering (what TRL / HF reward trainers do; a reward
 *               model trained elsewhere reads there).
 *
 * Decoders are causal, so reading at position p is scoring the sequence cut after p: `scoredIds`
 * cuts a tokenized example there, and `turnEndSuffix` gives what a generated reply (which stops at
 * the turn end) lacks before a `last_token` model can read it.
 */
import { IGNORE_INDEX, tokenizeDialogue, type TokenizedExample } from './dialogue.js';
import type { TemplateName } from './templates.js';
import type { Tokenizer } from './types.js';

export const READ_AT = ['turn_end', 'last_token'] as const;
export type ReadAt = (typeof READ_AT)[number];

/**
 * The ids a reward model reads, ending at its read position. `example` is labelled on its last
 * assistant reply (a preference side, a prompt/completion row, a dialogue tokenized with
 * `train_on_last`): labels end at that reply's turn-end token. Without any label (nothing to cut
 * at) the whole sequence is read.
 */
export function scoredIds(example: TokenizedExample, readAt: ReadAt): number[] {
  if (readAt === 'last_token') return example.inputIds;
  let last = example.labels.length - 1;
  while (last >= 0 && example.labels[last] === IGNORE_INDEX) last--;
  return last < 0 ? example.inputIds : example.inputIds.slice(0, last + 1);
}

/**
 * Tokens the template writes after the last assistant turn's turn-end token (chatml: the `\n`
 * after `<|im_end|>`; llama2: none). A reply generated up to its turn end plus these is the
 * full rendering a `last_token` reward model was trained on.
 */
export function turnEndSuffix(tokenizer: Tokenizer, template: TemplateName): number[] {
  const probe = tokenizeDialogue(tokenizer, [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], {
    template, strategy: 'train_on_last', onWarning: () => {},
  });
  return probe.inputIds.slice(scoredIds(probe, 'turn_end').length);
}
