/**
 * Fitting a long dialogue into a small model's context. A 20-turn dialogue of the world is ~1k
 * tokens, more than a tiny model's `max_position_embeddings`; as chat front-ends do, we keep the
 * system message and drop the oldest user/assistant exchanges until the rest fits. The system
 * instruction thus stays at the start of the context, several turns away from the current one —
 * which is exactly what Ghost Attention must keep alive.
 */
import type { ChatMessage } from '../tokenizer/index.js';

export interface TrimmedHistory {
  messages: ChatMessage[];
  /** How many leading user/assistant exchanges were dropped. */
  droppedTurns: number;
}

/**
 * Drop the oldest exchanges (a user message and the assistant reply after it) until
 * `countTokens(messages) <= maxTokens`. The leading system message and the final turn are always
 * kept; if even that is too long, it is returned as it is (the caller decides what to do).
 */
export function trimHistory(
  messages: readonly ChatMessage[],
  countTokens: (messages: readonly ChatMessage[]) => number,
  maxTokens: number,
): TrimmedHistory {
  const head = messages[0]?.role === 'system' ? [messages[0]] : [];
  let body = messages.slice(head.length);
  let dropped = 0;
  let current = [...head, ...body];
  // The last message and, if it is an assistant reply, the user turn before it are never dropped.
  const minBody = body[body.length - 1]?.role === 'assistant' ? 2 : 1;
  while (body.length > minBody && countTokens(current) > maxTokens) {
    // An exchange is user + assistant; a dialogue that starts with an assistant turn loses just that.
    const cut = body[0]!.role === 'user' && body[1]?.role === 'assistant' ? 2 : 1;
    if (body.length - cut < minBody) break;
    body = body.slice(cut);
    dropped += 1;
    current = [...head, ...body];
  }
  return { messages: current, droppedTurns: dropped };
}
