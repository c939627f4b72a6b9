import { Template } from '@huggingface/jinja';
import { UserError } from '../errors.js';

/** One chat turn, as in TRL's `messages` column. */
export interface ChatMessage {
  role: string;
  content: string;
}

export type BuiltinTemplateName = 'llama2' | 'chatml';
/** `tokenizer`: the `chat_template` from the tokenizer's own tokenizer_config.json. */
export type TemplateName = BuiltinTemplateName | 'tokenizer';

/**
 * Meta's Llama-2-chat template, as shipped in meta-llama/Llama-2-7b-chat-hf: every turn is
 * `<s>[INST] {user} [/INST] {assistant} </s>`, the system prompt folded into the first user turn
 * as `<<SYS>>\n{system}\n<</SYS>>\n\n`. It has no generation prompt: a dialogue ending in a user
 * turn already ends where the answer begins.
 */
export const LLAMA2_CHAT_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}" +
  "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}" +
  '{% set system_message = false %}{% endif %}{% for message in loop_messages %}' +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  '{% if loop.index0 == 0 and system_message != false %}' +
  "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}" +
  '{% endfor %}';

/** ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per turn; generation prompt `<|im_start|>assistant\n`. */
export const CHATML_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Special tokens a template writes literally; the tokenizer must know them as added tokens. */
export const TEMPLATE_REQUIRED_TOKENS: Record<BuiltinTemplateName, string[]> = {
  llama2: [],
  chatml: ['<|im_start|>', '<|im_end|>'],
};

/** Tokens that close a turn the model writes (trained, and a reason to stop generating). */
export const TEMPLATE_TURN_END_TOKENS: Record<BuiltinTemplateName, string[]> = {
  llama2: [],
  chatml: ['<|im_end|>'],
};

/** The jinja source a template name stands for. */
export function templateSource(name: TemplateName, tokenizerTemplate: string | undefined, where: string): string {
  if (name === 'llama2') return LLAMA2_CHAT_TEMPLATE;
  if (name === 'chatml') return CHATML_CHAT_TEMPLATE;
  if (name === 'tokenizer') {
    if (tokenizerTemplate === undefined) {
      throw new UserError(`${where}: no chat_template in tokenizer_config.json; use template llama2 or chatml`);
    }
    return tokenizerTemplate;
  }
  throw new UserError(`unknown chat template '${String(name)}' (expected llama2, chatml or tokenizer)`);
}

const parsed = new Map<string, Template>();

/** Render `messages` with a jinja chat template, as transformers' apply_chat_template does. */
export function renderTemplate(
  source: string,
  messages: readonly ChatMessage[],
  vars: { bosToken: string; eosToken: string; addGenerationPrompt: boolean },
): string {
  let template = parsed.get(source);
  if (!template) {
    template = new Template(source);
    parsed.set(source, template);
  }
  try {
    return template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: vars.bosToken,
      eos_token: vars.eosToken,
      add_generation_prompt: vars.addGenerationPrompt,
    });
  } catch (e) {
    // The template's raise_exception (e.g. roles that do not alternate) is a data problem.
    throw new UserError(`chat template: ${(e as Error).message}`, { cause: e });
  }
}
