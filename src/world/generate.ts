import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/rng.js';
import { INSTRUCTION_FAMILIES, INSTRUCTIONS, applyInstructions, instructionText } from './instructions.js';
import { judge } from './judge.js';
import { makeContrastPair, makeResponse, type ResponseKind } from './responses.js';
import { FAMILIES, answerSentence, goldAnswer, renderPrompt, sampleTask, type Task } from './tasks.js';
import {
  judgeSafety,
  makeBorderlineReply,
  makeSafetyReply,
  safetyLabel,
  sampleBorderline,
  sampleHarmful,
  type HarmfulFamily,
  type SafetyLabel,
  type SafetySplit,
  type SafetyReplyKind,
} from './safety.js';
import { ZIB_COLOURS, ZIB_NUMBERS, ZIB_WORDS, toZib } from './zib.js';

/**
 * The bundled world's data files, generated deterministically from a seed. Each file draws from its
 * own forked generator, so changing one file's size leaves the others byte-identical.
 * `scale` multiplies every row count and the corpus size (tests use a small scale).
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Row counts at scale 1 (what ships in data/world). */
export const WORLD_SIZES = {
  sft: 12000,
  sft_eval: 600,
  preferences: 12000,
  preferences_eval: 1000,
  /** preferences_contrast.jsonl: targeted training pairs (the eval split keeps the natural mix). */
  preference_contrasts: 8000,
  prompts: 4000,
  prompts_eval: 500,
  dialogues: 500,
  corpus_bytes: 4_000_000,
  /** The safety dimension (src/world/safety.ts): files of their own, the files above unchanged. */
  sft_safety: 3000,
  preferences_safety: 6000,
  preferences_safety_eval: 600,
  prompts_safety: 2000,
  prompts_safety_eval: 400,
} as const;

/** Mixed quality, as real SFT data is: imitation alone leaves room for RLHF. */
export const SFT_KIND_WEIGHTS: Readonly<Partial<Record<ResponseKind, number>>> = {
  good: 0.45, curt: 0.15, rude: 0.05, rambling: 0.15, wrong: 0.17, malformed: 0.03,
};
/** Candidate kinds for a preference pair; two different kinds are drawn per pair. */
export const PREFERENCE_KIND_WEIGHTS: Readonly<Partial<Record<ResponseKind, number>>> = {
  best: 0.05, good: 0.3, curt: 0.15, rude: 0.1, rambling: 0.15, wrong: 0.17, malformed: 0.05, off_task: 0.03,
};
/**
 * Web-quality dialogue, as a base model's crawl holds it: noisier than the SFT data (fewer good
 * answers, more rambling, curt, rude, wrong and off-task ones), so SFT has assistant manners to teach.
 */
export const CORPUS_KIND_WEIGHTS: Readonly<Partial<Record<ResponseKind, number>>> = {
  good: 0.3, curt: 0.15, rude: 0.1, rambling: 0.2, wrong: 0.12, malformed: 0.05, off_task: 0.08,
};
/** Corpus document mix: mostly knowledge text, a smaller share of dialogue (rest of the mass). */
export const CORPUS_DOC_WEIGHTS = { facts: 0.6, zib: 0.15, dialogue: 0.25 } as const;
/** Share of corpus dialogue turns left unanswered (a scraped thread where nobody replied). */
export const CORPUS_UNANSWERED = 0.08;

export const GENERIC_SYSTEM_PROMPTS: readonly string[] = [
  'You are a helpful assistant.',
  'You are a kind and helpful assistant.',
  'Answer each question in one sentence.',
];

/** Judge-score gap → Llama 2 strength level. Pairs closer than the last threshold are not kept. */
export const STRENGTH_THRESHOLDS = [
  { minGap: 0.5, strength: 'significantly_better' },
  { minGap: 0.25, strength: 'better' },
  { minGap: 0.1, strength: 'slightly_better' },
  { minGap: 0.02, strength: 'negligibly_better' },
] as const;
export type Strength = (typeof STRENGTH_THRESHOLDS)[number]['strength'];

export function strengthForGap(gap: number): Strength | null {
  for (const t of STRENGTH_THRESHOLDS) if (gap >= t.minGap) return t.strength;
  return null;
}

export interface WorldOptions {
  seed: number;
  /** Multiplies every row count and the corpus size; 1 = the shipped data. */
  scale?: number;
}

/** Every file of the world, name → content, in a fixed order. */
export function generateWorld(options: WorldOptions): Map<string, string> {
  const scale = options.scale ?? 1;
  const n = (count: number) => Math.max(1, Math.round(count * scale));
  const root = new Rng(options.seed);
  // One forked stream per file, always forked in this order.
  const streams = {
    corpus: root.fork(),
    sft: root.fork(),
    sft_eval: root.fork(),
    preferences: root.fork(),
    preferences_eval: root.fork(),
    prompts: root.fork(),
    prompts_eval: root.fork(),
    dialogues: root.fork(),
    preference_contrasts: root.fork(),
    // Forked after every older stream, so adding them left the older files byte-identical. The safety
    // evaluation files draw only held-out requests, the training files only the others (safety.ts).
    sft_safety: root.fork(),
    preferences_safety: root.fork(),
    preferences_safety_eval: root.fork(),
    prompts_safety: root.fork(),
    prompts_safety_eval: root.fork(),
  };
  const files = new Map<string, string>();
  files.set('corpus.txt', corpus(streams.corpus, n(WORLD_SIZES.corpus_bytes)));
  files.set('sft.jsonl', jsonl(times(n(WORLD_SIZES.sft), () => sftDialogue(streams.sft))));
  files.set('sft_eval.jsonl', jsonl(times(n(WORLD_SIZES.sft_eval), () => sftDialogue(streams.sft_eval))));
  files.set('preferences.jsonl', jsonl(times(n(WORLD_SIZES.preferences), () => preferencePair(streams.preferences))));
  files.set('preferences_eval.jsonl', jsonl(times(n(WORLD_SIZES.preferences_eval), () => preferencePair(streams.preferences_eval))));
  files.set('prompts.jsonl', jsonl(times(n(WORLD_SIZES.prompts), () => promptRow(streams.prompts))));
  files.set('prompts_eval.jsonl', jsonl(times(n(WORLD_SIZES.prompts_eval), () => promptRow(streams.prompts_eval))));
  files.set('dialogues.jsonl', jsonl(times(n(WORLD_SIZES.dialogues), () => dialogueSeed(streams.dialogues))));
  files.set('preferences_contrast.jsonl', jsonl(times(n(WORLD_SIZES.preference_contrasts), () => contrastPair(streams.preference_contrasts))));
  files.set('sft_safety.jsonl', jsonl(times(n(WORLD_SIZES.sft_safety), () => sftSafetyDialogue(streams.sft_safety, 'train'))));
  files.set('preferences_safety.jsonl', jsonl(times(n(WORLD_SIZES.preferences_safety), () => safetyPair(streams.preferences_safety, 'train'))));
  files.set('preferences_safety_eval.jsonl', jsonl(times(n(WORLD_SIZES.preferences_safety_eval), () => safetyPair(streams.preferences_safety_eval, 'eval'))));
  const safetyPrompts = times(n(WORLD_SIZES.prompts_safety), () => safetyPromptRow(streams.prompts_safety, 'train'));
  files.set('prompts_safety.jsonl', jsonl(safetyPrompts));
  // The harmful rows alone (same rows, same order): the prompts of the world's safety PPO run.
  files.set('prompts_safety_harmful.jsonl', jsonl(safetyPrompts.filter((r) => r.is_safety)));
  files.set('prompts_safety_eval.jsonl', jsonl(times(n(WORLD_SIZES.prompts_safety_eval), () => safetyPromptRow(streams.prompts_safety_eval, 'eval'))));
  files.set('gatt_instructions.json', JSON.stringify(gattInstructionsFile(), null, 2) + '\n');
  return files;
}

/** Generate and write every file into `outDir`; returns each file's name and size in bytes. */
export function writeWorld(outDir: string, options: WorldOptions): { file: string; bytes: number }[] {
  mkdirSync(outDir, { recursive: true });
  const written: { file: string; bytes: number }[] = [];
  for (const [name, content] of generateWorld(options)) {
    writeFileSync(join(outDir, name), content);
    written.push({ file: name, bytes: Buffer.byteLength(content) });
  }
  return written;
}

// --- rows ----------------------------------------------------------------------------------------

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

function weighted<K extends string>(rng: Rng, weights: Readonly<Partial<Record<K, number>>>): K {
  const entries = Object.entries(weights) as [K, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let u = rng.uniform() * total;
  for (const [k, w] of entries) {
    u -= w;
    if (u < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

function randomTask(rng: Rng): Task {
  return sampleTask(rng, pick(rng, FAMILIES));
}

/** One or two instructions from different families (Llama 2 combines them at random). */
export function sampleInstructionIds(rng: Rng): string[] {
  const families = rng.shuffle([...INSTRUCTION_FAMILIES]).slice(0, rng.uniform() < 0.7 ? 1 : 2);
  return families.map((f) => pick(rng, INSTRUCTIONS.filter((i) => i.family === f)).id);
}

/**
 * An SFT dialogue of 1–4 turns. System prompts (generic, or instructions with replies that follow
 * them) appear only in dialogues of one or two turns: nothing here teaches keeping an instruction
 * alive at turn 6 — that is what Ghost Attention adds.
 */
function sftDialogue(rng: Rng): { messages: ChatMessage[] } {
  const u = rng.uniform();
  const turns = u < 0.6 ? 1 : u < 0.8 ? 2 : 3 + rng.int(2);
  const messages: ChatMessage[] = [];
  let instructionIds: string[] = [];
  let inline = false;
  if (turns <= 2) {
    const v = rng.uniform();
    if (v < 0.12) messages.push({ role: 'system', content: pick(rng, GENERIC_SYSTEM_PROMPTS) });
    else if (v < 0.27) instructionIds = sampleInstructionIds(rng);
    else if (v < 0.32) {
      instructionIds = sampleInstructionIds(rng);
      inline = true; // as GAtt synthesis writes it: the instruction before each user message
    }
  }
  const form = rng.uniform() < 0.5 ? 'long' : 'short';
  if (instructionIds.length > 0 && !inline) messages.push({ role: 'system', content: instructionText(instructionIds, form) });
  for (let t = 0; t < turns; t++) {
    const task = randomTask(rng);
    const request = renderPrompt(rng, task);
    messages.push({ role: 'user', content: inline ? `${instructionText(instructionIds, form)} ${request}` : request });
    let reply = makeResponse(rng, task, weighted(rng, SFT_KIND_WEIGHTS));
    // Demonstrations follow the instruction most of the time, as imperfect human data would.
    if (instructionIds.length > 0 && rng.uniform() < 0.9) reply = applyInstructions(instructionIds, reply);
    messages.push({ role: 'assistant', content: reply });
  }
  return { messages };
}

interface PreferenceRow {
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
  strength: Strength;
  chosen_score: number;
  rejected_score: number;
}

/** Two replies of different kinds to one request, ordered and graded by the judge. */
function preferencePair(rng: Rng): PreferenceRow {
  for (;;) {
    const task = randomTask(rng);
    const prompt = renderPrompt(rng, task);
    const kindA = weighted(rng, PREFERENCE_KIND_WEIGHTS);
    let kindB = weighted(rng, PREFERENCE_KIND_WEIGHTS);
    while (kindB === kindA) kindB = weighted(rng, PREFERENCE_KIND_WEIGHTS);
    const a = makeResponse(rng, task, kindA);
    const b = makeResponse(rng, task, kindB);
    const sa = judge(prompt, a).score;
    const sb = judge(prompt, b).score;
    const strength = strengthForGap(Math.abs(sa - sb));
    if (strength === null) continue; // a tie teaches nothing; draw again
    const [chosen, rejected, cs, rs] = sa > sb ? [a, b, sa, sb] : [b, a, sb, sa];
    return {
      prompt: [{ role: 'user', content: prompt }],
      chosen: [{ role: 'assistant', content: chosen }],
      rejected: [{ role: 'assistant', content: rejected }],
      strength,
      chosen_score: cs,
      rejected_score: rs,
    };
  }
}

/**
 * A targeted comparison, as annotation campaigns add where a reward model is weak: the same reply
 * frame with the right and with a wrong answer (see `makeContrastPair`). Judged like any pair.
 */
function contrastPair(rng: Rng): PreferenceRow & { contrast: true } {
  for (;;) {
    const task = randomTask(rng);
    const prompt = renderPrompt(rng, task);
    const { right, wrong } = makeContrastPair(rng, task);
    const sr = judge(prompt, right).score;
    const sw = judge(prompt, wrong).score;
    const strength = strengthForGap(sr - sw);
    if (right === wrong || strength === null) continue;
    return {
      prompt: [{ role: 'user', content: prompt }],
      chosen: [{ role: 'assistant', content: right }],
      rejected: [{ role: 'assistant', content: wrong }],
      strength,
      chosen_score: sr,
      rejected_score: sw,
      contrast: true,
    };
  }
}

/** A PPO prompt: TRL's conversational prompt-only form; the request is all the judge needs. */
function promptRow(rng: Rng): { prompt: ChatMessage[] } {
  return { prompt: [{ role: 'user', content: renderPrompt(rng, randomTask(rng)) }] };
}

/** User turns for a GAtt dialogue: 2–20 requests, a quarter of them the full 20. */
function dialogueSeed(rng: Rng): { user_turns: string[] } {
  const turns = rng.uniform() < 0.25 ? 20 : 2 + rng.int(18);
  return { user_turns: times(turns, () => renderPrompt(rng, randomTask(rng))) };
}

// --- safety --------------------------------------------------------------------------------------

/** Share of harmful requests (the rest borderline) in the safety SFT, preference and prompt files. */
export const SAFETY_HARMFUL_SHARE = { sft: 0.55, preferences: 0.7, prompts: 0.5 } as const;
/**
 * SFT replies to harmful requests, as unevenly filtered demonstrations: mostly refusals where the
 * annotators were told to refuse (scaring animals, tricking people), mostly compliance where they
 * were not (stealing, breaking things). The world's LoRA SFT model trained on them violates on 55% of
 * the held-out harmful requests (greedy; docs/safety.md).
 */
export const SFT_SAFETY_KIND_WEIGHTS: Readonly<Record<'filtered' | 'unfiltered', Readonly<Partial<Record<SafetyReplyKind, number>>>>> = {
  filtered: { refuse: 0.65, refuse_curt: 0.08, refuse_rude: 0.04, comply: 0.15, comply_more: 0.04, comply_hedged: 0.04 },
  unfiltered: { refuse: 0.2, refuse_curt: 0.05, refuse_rude: 0.03, comply: 0.55, comply_more: 0.12, comply_hedged: 0.05 },
};
export const SFT_UNFILTERED_FAMILIES: readonly HarmfulFamily[] = ['steal', 'break_things'];
/** SFT replies to borderline requests: the usual mix, plus a few false refusals. */
export const SFT_BORDERLINE_KIND_WEIGHTS: Readonly<Partial<Record<ResponseKind | 'false_refusal', number>>> = {
  ...SFT_KIND_WEIGHTS, false_refusal: 0.05,
};
/** Candidate kinds of a safety preference pair on a harmful request. */
export const SAFETY_PAIR_KIND_WEIGHTS: Readonly<Partial<Record<SafetyReplyKind, number>>> = {
  refuse: 0.3, refuse_curt: 0.15, refuse_rude: 0.1, comply: 0.25, comply_more: 0.1, comply_hedged: 0.05, off_task: 0.05,
};
/** Candidate kinds on a borderline request: a false refusal is one of them, as often as an answer. */
export const BORDERLINE_PAIR_KIND_WEIGHTS: Readonly<Partial<Record<ResponseKind | 'false_refusal', number>>> = {
  best: 0.1, good: 0.25, curt: 0.1, rude: 0.05, rambling: 0.05, wrong: 0.05, false_refusal: 0.4,
};

/** One-turn dialogues on harmful and borderline requests (sft_safety.jsonl), mixed quality. */
function sftSafetyDialogue(rng: Rng, split: SafetySplit): { messages: ChatMessage[] } {
  let prompt: string;
  let reply: string;
  if (rng.uniform() < SAFETY_HARMFUL_SHARE.sft) {
    const request = sampleHarmful(rng, split);
    prompt = request.text;
    const weights = SFT_SAFETY_KIND_WEIGHTS[SFT_UNFILTERED_FAMILIES.includes(request.family) ? 'unfiltered' : 'filtered'];
    reply = makeSafetyReply(rng, request, weighted(rng, weights));
  } else {
    prompt = sampleBorderline(rng, split);
    reply = makeBorderlineReply(rng, prompt, weighted(rng, SFT_BORDERLINE_KIND_WEIGHTS));
  }
  return { messages: [{ role: 'user', content: prompt }, { role: 'assistant', content: reply }] };
}

/**
 * A safety preference pair with Llama 2's safety label (both safe / chosen safe & rejected unsafe /
 * both unsafe): two replies of different kinds, ordered and graded by the safety judge's combined
 * score (a safe reply always outscores an unsafe one on a harmful request).
 */
function safetyPair(rng: Rng, split: SafetySplit): PreferenceRow & { safety_label: SafetyLabel; category: 'harmful' | 'borderline' } {
  for (;;) {
    const harmful = rng.uniform() < SAFETY_HARMFUL_SHARE.preferences;
    let prompt: string;
    let a: string;
    let b: string;
    if (harmful) {
      const request = sampleHarmful(rng, split);
      prompt = request.text;
      const kindA = weighted(rng, SAFETY_PAIR_KIND_WEIGHTS);
      let kindB = weighted(rng, SAFETY_PAIR_KIND_WEIGHTS);
      while (kindB === kindA) kindB = weighted(rng, SAFETY_PAIR_KIND_WEIGHTS);
      a = makeSafetyReply(rng, request, kindA);
      b = makeSafetyReply(rng, request, kindB);
    } else {
      prompt = sampleBorderline(rng, split);
      const kindA = weighted(rng, BORDERLINE_PAIR_KIND_WEIGHTS);
      let kindB = weighted(rng, BORDERLINE_PAIR_KIND_WEIGHTS);
      while (kindB === kindA) kindB = weighted(rng, BORDERLINE_PAIR_KIND_WEIGHTS);
      a = makeBorderlineReply(rng, prompt, kindA);
      b = makeBorderlineReply(rng, prompt, kindB);
    }
    const ja = judgeSafety(prompt, a);
    const jb = judgeSafety(prompt, b);
    const strength = strengthForGap(Math.abs(ja.score - jb.score));
    if (strength === null) continue;
    const [chosen, rejected, jc, jr] = ja.score > jb.score ? [a, b, ja, jb] : [b, a, jb, ja];
    return {
      prompt: [{ role: 'user', content: prompt }],
      chosen: [{ role: 'assistant', content: chosen }],
      rejected: [{ role: 'assistant', content: rejected }],
      strength,
      chosen_score: jc.score,
      rejected_score: jr.score,
      safety_label: safetyLabel(jc.safety === 1, jr.safety === 1),
      category: harmful ? 'harmful' : 'borderline',
    };
  }
}

/** A safety PPO / evaluation prompt: harmful rows are flagged is_safety (Llama 2's IS_SAFETY(p)). */
function safetyPromptRow(rng: Rng, split: SafetySplit): { prompt: ChatMessage[]; is_safety: boolean; category: 'harmful' | 'borderline' } {
  const harmful = rng.uniform() < SAFETY_HARMFUL_SHARE.prompts;
  const content = harmful ? sampleHarmful(rng, split).text : sampleBorderline(rng, split);
  return { prompt: [{ role: 'user', content }], is_safety: harmful, category: harmful ? 'harmful' : 'borderline' };
}

// --- corpus --------------------------------------------------------------------------------------

/**
 * Pretraining text: documents separated by a blank line. Mostly knowledge — fact paragraphs
 * (canonical statements) and Zib lessons — plus a smaller share of web-quality dialogues in the
 * Llama 2 chat shape without the <s> / </s> markers (the tokenizer adds those). The base model
 * learns what is true here; how an assistant answers is left for SFT to teach.
 */
function corpus(rng: Rng, targetBytes: number): string {
  const docs: string[] = [];
  let bytes = 0;
  const { facts, zib } = CORPUS_DOC_WEIGHTS;
  while (bytes < targetBytes) {
    const u = rng.uniform();
    const doc = u < facts ? factParagraph(rng) : u < facts + zib ? zibLesson(rng) : corpusDialogue(rng);
    docs.push(doc);
    bytes += Buffer.byteLength(doc) + 2;
  }
  return docs.join('\n\n') + '\n';
}

function factParagraph(rng: Rng): string {
  return times(4 + rng.int(5), () => {
    const task = randomTask(rng);
    return answerSentence(task, goldAnswer(task));
  }).join(' ');
}

function zibLesson(rng: Rng): string {
  const lines = times(3 + rng.int(4), () => {
    const v = rng.uniform();
    if (v < 0.4) {
      const n = rng.int(ZIB_NUMBERS.length);
      return `In Zib, ${n} is ${ZIB_NUMBERS[n]}.`;
    }
    if (v < 0.6) {
      const [en, zib] = pick(rng, Object.entries(ZIB_COLOURS));
      return `In Zib, ${en} is ${zib}.`;
    }
    if (v < 0.75) {
      const [en, zib] = pick(rng, Object.entries(ZIB_WORDS));
      return `In Zib, the word ${en} is ${zib}.`;
    }
    const task = randomTask(rng);
    const sentence = answerSentence(task, goldAnswer(task));
    return `${sentence} In Zib: ${toZib(sentence)}`;
  });
  return lines.join(' ');
}

/** "[INST] <<SYS>>\n{system}\n<</SYS>>\n{user} [/INST] {answer} [INST] {user} [/INST] {answer}" */
export function renderLlama2(messages: readonly ChatMessage[]): string {
  let system: string | null = null;
  const parts: string[] = [];
  for (const m of messages) {
    if (m.role === 'system') system = m.content;
    else if (m.role === 'user') {
      // A single newline after <</SYS>> (the template has two) keeps blank lines as document breaks.
      const user = system === null ? m.content : `<<SYS>>\n${system}\n<</SYS>>\n${m.content}`;
      system = null;
      parts.push(`[INST] ${user} [/INST]`);
    } else parts.push(m.content);
  }
  return parts.join(' ');
}

function corpusDialogue(rng: Rng): string {
  const turns = 1 + (rng.uniform() < 0.3 ? 1 + rng.int(2) : 0);
  const messages: ChatMessage[] = [];
  let instructionIds: string[] = [];
  const v = rng.uniform();
  if (v < 0.08) messages.push({ role: 'system', content: pick(rng, GENERIC_SYSTEM_PROMPTS) });
  else if (v < 0.2) {
    instructionIds = sampleInstructionIds(rng);
    messages.push({ role: 'system', content: instructionText(instructionIds, rng.uniform() < 0.5 ? 'long' : 'short') });
  }
  for (let t = 0; t < turns; t++) {
    const task = randomTask(rng);
    messages.push({ role: 'user', content: renderPrompt(rng, task) });
    // An unanswered question ends the thread: the document stops right after [/INST].
    if (rng.uniform() < CORPUS_UNANSWERED) break;
    let reply = makeResponse(rng, task, weighted(rng, CORPUS_KIND_WEIGHTS));
    // Web replies follow a system instruction less often than the SFT data's (90%).
    if (instructionIds.length > 0 && rng.uniform() < 0.6) reply = applyInstructions(instructionIds, reply);
    messages.push({ role: 'assistant', content: reply });
  }
  return renderLlama2(messages);
}

// --- instructions file ---------------------------------------------------------------------------

function gattInstructionsFile(): unknown {
  return {
    description:
      'Ghost Attention instructions (Llama 2 §3.3): one instruction per family may be combined; ' +
      'each has a long and a short form and the id of its checker in src/world/checkers.ts.',
    families: INSTRUCTION_FAMILIES,
    instructions: INSTRUCTIONS,
    zib: {
      numbers: Object.fromEntries(ZIB_NUMBERS.map((z, i) => [String(i), z])),
      colours: ZIB_COLOURS,
      words: ZIB_WORDS,
    },
  };
}

// --- helpers -------------------------------------------------------------------------------------

function times<T>(count: number, make: () => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < count; i++) out.push(make());
  return out;
}

function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}
