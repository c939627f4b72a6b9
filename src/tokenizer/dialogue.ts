import { UserError } from '../errors.js';
import {
  type BuiltinTemplateName,
  type ChatMessage,
  type TemplateName,
  TEMPLATE_REQUIRED_TOKENS,
  TEMPLATE_TURN_END_TOKENS,
  renderTemplate,
  templateSource,
} from './templates.js';
import type { Tokenizer } from './types.js';

/** Label of a token that gets no loss (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

/**
 * Which tokens are trained: every assistant turn (default), every token, or only the final
 * assistant turn (Ghost Attention trains on the last answer of a dialogue).
 */
export type LabelStrategy = 'train_on_assistant' | 'train_on_all' | 'train_on_last';

/** One training example; `labels[i]` is `inputIds[i]` where trained, IGNORE_INDEX elsewhere. */
export interface TokenizedExample {
  inputIds: number[];
  labels: number[];
}

export interface DialogueOptions {
  template?: TemplateName;
  strategy?: LabelStrategy;
  /** Where the "template is not prefix-stable" warning goes (console.warn by default). */
  onWarning?: (message: string) => void;
}

/**
 * Render a dialogue with a chat template and label it.
 *
 * Labels come from incremental rendering: the text up to where each trained assistant answer
 * begins (the generation prompt) and up to where it ends are rendered on their own, and each
 * must tokenize to a prefix of the whole dialogue's tokens. Then the answer's tokens are exactly
 * those between the two prefixes. When a template/tokenizer pair breaks that (a merge across a
 * boundary), we warn once and tokenize the pieces separately and concatenate them instead.
 * The turn-closing EOS (or `<|im_end|>`) is trained; what the template writes after it is not.
 */
export function tokenizeDialogue(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  opts: DialogueOptions = {},
): TokenizedExample {
  const strategy = opts.strategy ?? 'train_on_assistant';
  const lastAssistant = findLastIndex(messages, (m) => m.role === 'assistant');
  const trained = (i: number) =>
    strategy === 'train_on_last' ? i === lastAssistant : messages[i]!.role === 'assistant';
  return tokenizeChat(tokenizer, messages, trained, strategy === 'train_on_all', opts);
}

/**
 * TRL's prompt/completion rows: plain strings (`prompt + completion`, then EOS) or message lists
 * (prompt turns, then completion turns, rendered with the chat template). Only the completion is
 * trained, its closing EOS included.
 */
export function tokenizePromptCompletion(
  tokenizer: Tokenizer,
  prompt: string | readonly ChatMessage[],
  completion: string | readonly ChatMessage[],
  opts: Omit<DialogueOptions, 'strategy'> = {},
): TokenizedExample {
  if (typeof prompt !== 'string' && typeof completion !== 'string') {
    const messages = [...prompt, ...completion];
    const trained = (i: number) => i >= prompt.length && messages[i]!.role === 'assistant';
    return tokenizeChat(tokenizer, messages, trained, false, opts);
  }
  if (typeof prompt !== 'string' || typeof completion !== 'string') {
    throw new UserError('prompt and completion must both be strings or both be message lists');
  }
  // Whatever special tokens the tokenizer puts before a text (BOS, usually) start the example.
  const leading = tokenizer.encode('', { addSpecialTokens: true }).filter((id) => id !== tokenizer.eosId);
  const full = prompt + completion;
  const spans: Span[] = [[prompt.length, full.length]];
  const body = labelSpans(tokenizer, full, spans, false, new Set([tokenizer.eosId]), 'prompt/completion', opts.onWarning);
  return {
    inputIds: [...leading, ...body.inputIds, tokenizer.eosId],
    labels: [...leading.map(() => IGNORE_INDEX), ...body.labels, tokenizer.eosId],
  };
}

/** The token ids of a generation prompt: the dialogue so far, ending where the answer begins. */
export function renderChatPrompt(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  template: TemplateName,
): number[] {
  return tokenizer.encode(renderChatText(tokenizer, messages, template, { addGenerationPrompt: true }), {
    addSpecialTokens: false,
  });
}

/** The rendered text of a dialogue (special tokens written out, as in apply_chat_template). */
export function renderChatText(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  template: TemplateName,
  opts: { addGenerationPrompt: boolean },
): string {
  const format = chatFormat(tokenizer, template);
  return renderTemplate(format.source, messages, { ...format.vars, addGenerationPrompt: opts.addGenerationPrompt });
}

/** Ids that end an assistant turn under a template: generation stops at any of them. */
export function turnEndIds(tokenizer: Tokenizer, template: TemplateName): number[] {
  return [...chatFormat(tokenizer, template).turnEnds];
}

// ---------------------------------------------------------------------------------------------

/** A [start, end) character range of the rendered text whose tokens are trained. */
type Span = [number, number];

interface ChatFormat {
  source: string;
  vars: { bosToken: string; eosToken: string };
  turnEnds: Set<number>;
}

const formats = new WeakMap<Tokenizer, Map<TemplateName, ChatFormat>>();

/** Template source, the BOS/EOS strings it writes, and the turn-closing ids; checked once per tokenizer. */
function chatFormat(tokenizer: Tokenizer, template: TemplateName): ChatFormat {
  let perTokenizer = formats.get(tokenizer);
  if (!perTokenizer) formats.set(tokenizer, (perTokenizer = new Map()));
  const cached = perTokenizer.get(template);
  if (cached) return cached;

  const source = templateSource(template, tokenizer.chatTemplate, 'tokenizer');
  const bosToken = tokenizer.decode([tokenizer.bosId]);
  const eosToken = tokenizer.decode([tokenizer.eosId]);
  const required = template === 'tokenizer' ? [] : TEMPLATE_REQUIRED_TOKENS[template as BuiltinTemplateName];
  // Special-token strings in rendered text must encode to their single id, never to characters.
  for (const token of [bosToken, eosToken, ...required]) {
    const id = tokenizer.tokenToId(token);
    const ids = tokenizer.encode(token, { addSpecialTokens: false });
    if (id === undefined || ids.length !== 1 || ids[0] !== id) {
      throw new UserError(
        `chat template '${template}' writes '${token}', which this tokenizer does not treat as one special token` +
          (required.includes(token) ? ' (train a tokenizer with `rlhf tokenizer train`, or use template llama2)' : ''),
      );
    }
  }
  const turnEnds = new Set([tokenizer.eosId]);
  const candidates =
    template === 'tokenizer'
      ? KNOWN_TURN_END_TOKENS.filter((t) => source.includes(t))
      : TEMPLATE_TURN_END_TOKENS[template as BuiltinTemplateName];
  for (const token of candidates) {
    const id = tokenizer.tokenToId(token);
    if (id !== undefined) turnEnds.add(id);
  }
  const format = { source, vars: { bosToken, eosToken }, turnEnds };
  perTokenizer.set(template, format);
  return format;
}

/** Turn-closing tokens of common templates (ChatML, Llama 3, Gemma). */
const KNOWN_TURN_END_TOKENS = ['<|im_end|>', '<|eot_id|>', '<end_of_turn>'];

function tokenizeChat(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  trained: (i: number) => boolean,
  trainAll: boolean,
  opts: DialogueOptions,
): TokenizedExample {
  const template = opts.template ?? 'llama2';
  const format = chatFormat(tokenizer, template);
  const render = (upTo: number, addGenerationPrompt: boolean) =>
    renderTemplate(format.source, messages.slice(0, upTo), { ...format.vars, addGenerationPrompt });

  const full = render(messages.length, false);
  const spans: Span[] = [];
  if (!trainAll) {
    for (let i = 0; i < messages.length; i++) {
      if (messages[i]!.role !== 'assistant' || !trained(i)) continue;
      const before = render(i, true);
      const through = render(i + 1, false);
      if (!full.startsWith(before) || !full.startsWith(through) || before.length > through.length) {
        throw new UserError(
          `chat template '${template}' is not incremental: the dialogue up to message ${i} does not render ` +
            'as a prefix of the whole dialogue, so assistant turns cannot be located',
        );
      }
      spans.push([before.length, through.length]);
    }
  }
  return labelSpans(tokenizer, full, spans, trainAll, format.turnEnds, template, opts.onWarning);
}

const warned = new WeakMap<Tokenizer, Set<string>>();

/**
 * Tokenize `text` (no special tokens added: the template wrote them) and label the tokens inside
 * `spans`. Each span's trailing tokens after its last turn-end id stay unlabelled.
 */
function labelSpans(
  tokenizer: Tokenizer,
  text: string,
  spans: readonly Span[],
  trainAll: boolean,
  turnEnds: ReadonlySet<number>,
  what: string,
  onWarning: (message: string) => void = (m) => console.warn(m),
): TokenizedExample {
  const encode = (s: string) => tokenizer.encode(s, { addSpecialTokens: false });
  const cuts = [...new Set([0, ...spans.flat(), text.length])].sort((a, b) => a - b);

  let inputIds = encode(text);
  const tokenAt = new Map<number, number>([[0, 0], [text.length, inputIds.length]]);
  let stable = true;
  for (const cut of cuts.slice(1, -1)) {
    const prefix = encode(text.slice(0, cut));
    if (!isPrefix(prefix, inputIds)) {
      stable = false;
      break;
    }
    tokenAt.set(cut, prefix.length);
  }
  if (!stable) {
    let seen = warned.get(tokenizer);
    if (!seen) warned.set(tokenizer, (seen = new Set()));
    if (!seen.has(what)) {
      seen.add(what);
      onWarning(
        `tokenizer: '${what}' text does not tokenize prefix-stably (a token spans a turn boundary); ` +
          'tokenizing turn by turn and concatenating instead',
      );
    }
    inputIds = [];
    for (let c = 0; c + 1 < cuts.length; c++) {
      tokenAt.set(cuts[c]!, inputIds.length);
      inputIds.push(...encode(text.slice(cuts[c], cuts[c + 1])));
    }
    tokenAt.set(text.length, inputIds.length);
  }

  if (trainAll) return { inputIds, labels: inputIds.slice() };
  const labels = new Array<number>(inputIds.length).fill(IGNORE_INDEX);
  for (const [start, end] of spans) {
    const from = tokenAt.get(start)!;
    let to = tokenAt.get(end)!;
    const lastEnd = findLastIndex(inputIds.slice(from, to), (id) => turnEnds.has(id));
    if (lastEnd >= 0) to = from + lastEnd + 1;
    for (let t = from; t < to; t++) labels[t] = inputIds[t]!;
  }
  return { inputIds, labels };
}

function isPrefix(prefix: readonly number[], whole: readonly number[]): boolean {
  if (prefix.length > whole.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== whole[i]) return false;
  return true;
}

function findLastIndex<T>(items: readonly T[], predicate: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i]!)) return i;
  return -1;
}
