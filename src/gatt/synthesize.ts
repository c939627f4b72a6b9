/**
 * Ghost Attention data synthesis (Llama 2 §3.3).
 *
 *   1. For each dialogue seed [u1, …, un] draw an instruction (a random combination of families,
 *      half the time in its short form).
 *   2. Sample every assistant answer from the chat model with the instruction concatenated to
 *      *every* user message (the model sees it in each turn, so it can follow it), turn by turn,
 *      all dialogues of a turn index in one batch; the model's own answers are fed back.
 *   3. Optionally repair an answer that breaks the instruction with the world's rewrite rules (see
 *      `repair` below — the world's stand-in for a stronger teacher).
 *   4. Write the training dialogue with the instruction only once, as the system message of the
 *      first turn, and mark it `train_on: "last"`: the SFT recipe (strategy `train_on_last`) puts
 *      loss on the final assistant answer only; every earlier token, assistant turns included,
 *      gets none. So the model learns to follow an instruction it saw turns ago.
 *
 * Sampling is passed in as a function (`ReplySampler`), so this module needs no model code and a
 * test can drive it with a stub.
 */
import type { Rng } from '../engine/rng.js';
import type { ChatMessage } from '../tokenizer/index.js';
import { trimHistory } from './history.js';
import { follows, sampleInstruction, type InstructionSet, type SampledInstruction } from './instructions.js';

/** Replies to a batch of generation prompts (each a dialogue ending on a user turn), in order. */
export type ReplySampler = (prompts: ChatMessage[][]) => Promise<string[]>;

/** Rewrites a reply so it follows the instructions `ids` (the world's `applyInstructions`). */
export type ReplyRepair = (ids: readonly string[], reply: string) => string;

export interface DialogueSeed {
  userTurns: string[];
}

/** One synthesised training row, in the SFT `messages` format plus what GAtt records. */
export interface GattRow {
  /** [system (the instruction), u1, a1, …, un, an]: the instruction appears only here. */
  messages: ChatMessage[];
  instruction_ids: string[];
  instruction_form: 'long' | 'short';
  /** Only the last assistant turn is trained (tokenizer strategy `train_on_last`). */
  train_on: 'last';
  /** Index in `messages` of the one trained message. */
  trained_message: number;
  /** Per assistant turn: did the sampled answer follow the instruction before any repair. */
  followed: boolean[];
  /** Per assistant turn: was it rewritten by the repair rules. */
  repaired: boolean[];
  /** Leading exchanges dropped so the row fits the context (`maxTokens`). */
  dropped_turns: number;
  /** Row of the seed in the dialogues file (0-based), so rows can be traced back. */
  seed_index: number;
}

export interface SynthesisOptions {
  instructions: InstructionSet;
  /** Families combined per instruction: 1..maxFamilies, uniform. */
  maxFamilies: number;
  /** Probability of the short form ("Persona: robot"). */
  shortFormProb: number;
  /** Seeds longer than this are cut to their first `maxTurns` user turns. */
  maxTurns: number;
  /** 'last': one row per dialogue (trained on its last turn); 'all': one row per turn index. */
  rowsPerDialogue: 'last' | 'all';
  /** When given, answers that break the instruction are rewritten with it. */
  repair?: ReplyRepair;
  /** When given with `maxTokens`, rows longer than this lose their oldest exchanges. */
  countTokens?: (messages: readonly ChatMessage[]) => number;
  maxTokens?: number;
}

export interface SynthesisStats {
  dialogues: number;
  rows: number;
  answers: number;
  /** Fraction of sampled answers that followed their instruction before repair. */
  followRate: number;
  /** Fraction of answers rewritten by the repair rules. */
  repairRate: number;
  /** Fraction of answers that still break the instruction after repair (kept as they are). */
  brokenRate: number;
  /** Empty sampled answers; each ends its dialogue early (the turns before it are kept). */
  emptyAnswers: number;
  /** Rows not written because their trained (last) answer breaks the instruction. */
  droppedRows: number;
  /**
   * Rows not written because the system instruction and the trained turn alone exceed `maxTokens`:
   * the fine-tuning's `keep_end` truncation would cut the instruction away and teach the model to
   * follow an instruction it cannot see.
   */
  tooLongRows: number;
}

/** The instruction written before a user message, as the world's inline SFT rows do. */
export function withInstruction(instruction: string, userMessage: string): string {
  return `${instruction} ${userMessage}`;
}

/** Does `reply` follow every instruction in `ids`? */
export function followsAll(set: InstructionSet, ids: readonly string[], reply: string): boolean {
  return ids.every((id) => follows(set, id, reply));
}

/**
 * Repair policy: rewrite only for the instructions the reply breaks (so a reply that already begins
 * with "BEEP." does not get a second one); if the result still breaks one (a rewrite undoing
 * another), rewrite the original for all of them.
 */
export function repairReply(set: InstructionSet, ids: readonly string[], reply: string, repair: ReplyRepair): string {
  const broken = ids.filter((id) => !follows(set, id, reply));
  if (broken.length === 0) return reply;
  const partial = repair(broken, reply);
  return followsAll(set, ids, partial) ? partial : repair(ids, reply);
}

/** Synthesise GAtt rows from dialogue seeds. Deterministic given `rng` and a deterministic sampler. */
export async function synthesizeGatt(
  seeds: readonly DialogueSeed[],
  sampler: ReplySampler,
  rng: Rng,
  opts: SynthesisOptions,
): Promise<{ rows: GattRow[]; stats: SynthesisStats }> {
  // 1. instructions, drawn up front so they do not depend on how sampling is batched
  const dialogues = seeds.map((seed, index) => ({
    index,
    userTurns: seed.userTurns.slice(0, opts.maxTurns),
    instruction: sampleInstruction(rng, opts.instructions, { maxFamilies: opts.maxFamilies, shortFormProb: opts.shortFormProb }),
    answers: [] as string[],
    followed: [] as boolean[],
    repaired: [] as boolean[],
  }));
  const longest = Math.max(0, ...dialogues.map((d) => d.userTurns.length));

  // 2–3. turn by turn: every dialogue that has turn t is answered in one sampler call
  let broken = 0;
  let empty = 0;
  for (let t = 0; t < longest; t++) {
    const active = dialogues.filter((d) => d.userTurns.length > t);
    const prompts = active.map((d) => samplingPrompt(d.instruction, d.userTurns.slice(0, t + 1), d.answers));
    const replies = await sampler(prompts);
    active.forEach((d, i) => {
      const sampled = replies[i]!;
      const followed = followsAll(opts.instructions, d.instruction.ids, sampled);
      const answer = !followed && opts.repair ? repairReply(opts.instructions, d.instruction.ids, sampled, opts.repair) : sampled;
      if (answer.trim() === '') {
        // An empty answer cannot be a training turn: the dialogue ends before it.
        d.userTurns = d.userTurns.slice(0, t);
        empty += 1;
        return;
      }
      if (!followsAll(opts.instructions, d.instruction.ids, answer)) broken += 1;
      d.answers.push(answer);
      d.followed.push(followed);
      d.repaired.push(answer !== sampled);
    });
  }

  // 4. training rows: the instruction only as the first turn's system message, loss on the last turn
  //    A row whose trained answer still breaks the instruction would teach the opposite: dropped.
  const rows: GattRow[] = [];
  let unfollowed = 0;
  let tooLong = 0;
  for (const d of dialogues) {
    const ends = opts.rowsPerDialogue === 'all' ? d.userTurns.map((_, t) => t + 1) : [d.userTurns.length];
    for (const turns of ends) {
      if (turns === 0) continue;
      if (!followsAll(opts.instructions, d.instruction.ids, d.answers[turns - 1]!)) {
        unfollowed += 1;
        continue;
      }
      const row = trainingRow(d, turns, opts);
      if (row === null) tooLong += 1;
      else rows.push(row);
    }
  }
  const answers = dialogues.reduce((n, d) => n + d.answers.length, 0);
  const count = (xs: boolean[][]) => xs.reduce((n, x) => n + x.filter(Boolean).length, 0);
  const rate = (n: number) => (answers === 0 ? 0 : n / answers);
  return {
    rows,
    stats: {
      dialogues: dialogues.length,
      rows: rows.length,
      answers,
      followRate: rate(count(dialogues.map((d) => d.followed))),
      repairRate: rate(count(dialogues.map((d) => d.repaired))),
      brokenRate: rate(broken),
      emptyAnswers: empty,
      droppedRows: unfollowed,
      tooLongRows: tooLong,
    },
  };
}

/** What the model is sampled from: the instruction before every user message, its earlier answers after each. */
export function samplingPrompt(instruction: SampledInstruction, userTurns: readonly string[], answers: readonly string[]): ChatMessage[] {
  const messages: ChatMessage[] = [];
  userTurns.forEach((u, t) => {
    messages.push({ role: 'user', content: withInstruction(instruction.text, u) });
    if (t < userTurns.length - 1) messages.push({ role: 'assistant', content: answers[t]! });
  });
  return messages;
}

function trainingRow(
  d: { index: number; userTurns: string[]; instruction: SampledInstruction; answers: string[]; followed: boolean[]; repaired: boolean[] },
  turns: number,
  opts: SynthesisOptions,
): GattRow | null {
  let messages: ChatMessage[] = [{ role: 'system', content: d.instruction.text }];
  for (let t = 0; t < turns; t++) {
    messages.push({ role: 'user', content: d.userTurns[t]! });
    messages.push({ role: 'assistant', content: d.answers[t]! });
  }
  let dropped = 0;
  if (opts.countTokens && opts.maxTokens !== undefined) {
    const trimmed = trimHistory(messages, opts.countTokens, opts.maxTokens);
    messages = trimmed.messages;
    dropped = trimmed.droppedTurns;
    // Still too long: any truncation would lose the instruction or the trained turn.
    if (opts.countTokens(messages) > opts.maxTokens) return null;
  }
  return {
    messages,
    instruction_ids: d.instruction.ids,
    instruction_form: d.instruction.form,
    train_on: 'last',
    trained_message: messages.length - 1,
    followed: d.followed.slice(dropped, turns),
    repaired: d.repaired.slice(dropped, turns),
    dropped_turns: dropped,
    seed_index: d.index,
  };
}
