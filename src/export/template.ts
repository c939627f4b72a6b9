/**
 * Chat templates for the engines. TRL 1.x computes `assistant_only_loss` from the
 * `{% generation %}` … `{% endgeneration %}` markers of the chat template (transformers'
 * `return_assistant_tokens_mask`); the Llama 2 and ChatML templates we ship have none, so
 * exporting them as they are would silently train on every token. These are the same templates
 * with the markers around exactly the tokens our label mask trains (src/tokenizer/dialogue.ts):
 * an assistant answer and its turn-closing token, not the text the template writes after it.
 * Without the markers they render exactly as the originals (Llama 2's is the original, character for character).
 */
import { CHATML_CHAT_TEMPLATE, LLAMA2_CHAT_TEMPLATE } from '../tokenizer/templates.js';
import { UserError } from '../errors.js';

export const GENERATION_START = '{% generation %}';
export const GENERATION_END = '{% endgeneration %}';

const LLAMA2_ASSISTANT = "{{ ' '  + content.strip() + ' ' + eos_token }}";
const CHATML_TURN = "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}";
const CHATML_MARKED_TURN =
  "{% if message['role'] == 'assistant' %}{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  `${GENERATION_START}{{ message['content'] + '<|im_end|>' }}${GENERATION_END}{{ '\\n' }}` +
  `{% else %}${CHATML_TURN}{% endif %}`;

/** The template without its generation markers (what plain jinja renderers see). */
export function withoutGenerationMarkers(template: string): string {
  return template.split(GENERATION_START).join('').split(GENERATION_END).join('');
}

export function hasGenerationMarkers(template: string): boolean {
  return template.includes(GENERATION_START) && template.includes(GENERATION_END);
}

/**
 * `template` with generation markers around the assistant answers. A template that already has
 * them is returned as it is; one we do not recognise is refused (`where` names the config key),
 * since guessing where its answers start would silently change which tokens are trained.
 */
export function markGeneration(template: string, where: string): string {
  if (hasGenerationMarkers(template)) return template;
  const same = (a: string, b: string) => a.replace(/\s+/g, ' ').trim() === b.replace(/\s+/g, ' ').trim();
  if (same(template, LLAMA2_CHAT_TEMPLATE)) {
    return LLAMA2_CHAT_TEMPLATE.replace(LLAMA2_ASSISTANT, `${GENERATION_START}${LLAMA2_ASSISTANT}${GENERATION_END}`);
  }
  if (same(template, CHATML_CHAT_TEMPLATE)) return CHATML_CHAT_TEMPLATE.replace(CHATML_TURN, CHATML_MARKED_TURN);
  throw new UserError(
    `${where}: this chat template has no {% generation %} markers and is not one rlhf-kit knows (llama2, chatml), so TRL's ` +
      'assistant_only_loss could not tell the assistant tokens apart and would train on every token. Add the markers around ' +
      "the assistant content in the tokenizer's chat_template, or set tokenizer.template=llama2 or chatml",
  );
}
