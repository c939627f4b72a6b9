import { CAPITALS, ANIMAL_SOUNDS, COLOURS, OPPOSITES } from './facts.js';
import { POLITE_CLOSERS, POLITE_OPENERS, RUDE_OPENERS } from './responses.js';
import { answerSentence, goldAnswer, parsePrompt, subjectWords, type Family, type Task } from './tasks.js';
import { fromZib } from './zib.js';

/**
 * The gold judge: a deterministic score in [0, 1] for a reply to a world request, read from the
 * prompt text and the reply alone. It labels the preference pairs and measures every stage; the
 * PPO stage never optimises it (PPO climbs the learned reward model, the judge says whether that
 * helped — Gao et al. 2022's gold reward).
 *
 * score = correct · (0.1 + 0.9 · style) + (1 − correct) · 0.2 · style, where
 * style = 0.3 on_task + 0.2 well_formed + 0.2 polite + 0.3 concise.
 * A right answer always has on_task ≥ 0.6, so it scores ≥ 0.26 and a wrong one ≤ 0.2 (correctness
 * dominates); among right answers the score climbs with form, politeness and brevity (a gradient
 * for PPO to climb, and graded preference strengths).
 */

export interface JudgeParts {
  /** 1 when every answer the reply states is right, 0.3 when it states the right one and a wrong one, else 0. */
  correct: number;
  /** 1 for an answer that restates the question's subject, 0.6 for a bare answer, 0 for no answer. */
  on_task: number;
  /** 1 with a polite phrase, 0.5 neutral, 0 with a rude one. */
  polite: number;
  /** 1 up to the good length (the canonical answer plus room for a polite frame), falling to 0 at twice it. */
  concise: number;
  /** Share of: ends with . or !, starts with a capital or digit, no doubled word, no stray symbols. */
  well_formed: number;
}

export interface Judgement {
  score: number;
  parts: JudgeParts;
  /** The task family read from the prompt; null when the prompt is not a world request (score 0). */
  family: Family | null;
}

export interface PromptMessage {
  role: string;
  content: string;
}

const STYLE_WEIGHTS = { on_task: 0.3, well_formed: 0.2, polite: 0.2, concise: 0.3 } as const;
/** Words allowed beyond the canonical answer before the length penalty starts (a polite frame). */
const FRAME_ALLOWANCE = 8;

/** Phrases as whole words; "Sure." keeps its full stop so the hedge "not sure, but" is not polite. */
const POLITE_MARKERS = phraseRegexes([...POLITE_OPENERS, ...POLITE_CLOSERS, 'please', 'thank you', 'thanks'], ['Sure.']);
const RUDE_MARKERS = phraseRegexes(RUDE_OPENERS, []);

function phraseRegexes(phrases: readonly string[], keepStop: readonly string[]): RegExp[] {
  return phrases.map((p) => {
    const phrase = (keepStop.includes(p) ? p : p.replace(/\.$/, '')).toLowerCase().replace(/\./g, '\\.');
    return new RegExp(`(?<![a-z])${phrase}(?![a-z])`);
  });
}

/**
 * Judge `response` to `prompt` (the user's text, or a message list whose last user message holds
 * the request; system messages are ignored — instruction adherence is the checkers' job).
 */
export function judge(prompt: string | readonly PromptMessage[], response: string): Judgement {
  const task = parsePrompt(typeof prompt === 'string' ? prompt : lastUserText(prompt));
  const zero: JudgeParts = { correct: 0, on_task: 0, polite: 0, concise: 0, well_formed: 0 };
  if (task === null) return { score: 0, parts: zero, family: null };
  if (response.trim() === '') return { score: 0, parts: zero, family: task.family };

  const text = fromZib(response).toLowerCase(); // Zib answers are judged on their meaning
  const claims = extractClaims(task, text);
  const gold = goldAnswer(task);
  const parts: JudgeParts = {
    correct: claims.length === 0 ? 0 : claims.every((c) => c === gold) ? 1 : claims.includes(gold) ? 0.3 : 0,
    on_task: claims.length === 0 ? 0 : subjectWords(task).every((w) => hasWord(text, w)) ? 1 : 0.6,
    polite: politeness(text),
    concise: conciseness(wordCount(response), wordCount(answerSentence(task, gold)) + FRAME_ALLOWANCE),
    well_formed: wellFormedness(response),
  };
  return { score: combine(parts), parts, family: task.family };
}

/** The weighted combination documented above; pure, for tests and for tuning. */
export function combine(parts: JudgeParts): number {
  const style =
    STYLE_WEIGHTS.on_task * parts.on_task +
    STYLE_WEIGHTS.well_formed * parts.well_formed +
    STYLE_WEIGHTS.polite * parts.polite +
    STYLE_WEIGHTS.concise * parts.concise;
  return round4(parts.correct * (0.1 + 0.9 * style) + (1 - parts.correct) * 0.2 * style);
}

function lastUserText(messages: readonly PromptMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === 'user') return messages[i]!.content;
  return '';
}

// --- what the reply claims -----------------------------------------------------------------------

/** Every answer the reply states, in the normal form of `goldAnswer`. `text` is lower case English. */
export function extractClaims(task: Task, text: string): string[] {
  switch (task.family) {
    case 'add':
    case 'subtract':
    case 'letters':
      return numberClaims(text);
    case 'capital':
      return closedSetClaims(text, Object.values(CAPITALS).map((c) => c.toLowerCase()));
    case 'sound':
      return closedSetClaims(text, Object.values(ANIMAL_SOUNDS));
    case 'colour':
      return closedSetClaims(text, COLOURS);
    case 'opposite':
      return closedSetClaims(text, Object.keys(OPPOSITES).filter((w) => w !== task.args.word));
    case 'backwards':
      return backwardsClaims(text, [...task.args.word!].reverse().join(''));
    case 'first_letter':
      return letterClaims(text);
    case 'compare':
      return compareClaims(text, task.args.x!, task.args.y!, task.args.rel!);
  }
}

/** Numbers stated as results ("is 7", "has 5"); failing that, the last number in the reply. */
function numberClaims(text: string): string[] {
  const stated = [...text.matchAll(/\b(?:is|equals|makes|gives|has|=)\s+(\d+)\b/g)].map((m) => String(Number(m[1])));
  if (stated.length > 0) return stated;
  const all = text.match(/\b\d+\b/g);
  return all === null ? [] : [String(Number(all[all.length - 1]))];
}

function closedSetClaims(text: string, answers: readonly string[]): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/[a-z]+/g)) if (answers.includes(m[0])) found.push(m[0]);
  return found;
}

/** Letter-by-letter spellings ("t-a-c") and the reversed word written whole ("tac"). */
function backwardsClaims(text: string, reversed: string): string[] {
  const claims: string[] = [];
  for (const m of text.matchAll(/(?<![a-z-])[a-z](?:-[a-z])+(?![a-z-])/g)) claims.push(m[0].replace(/-/g, ''));
  for (const m of text.matchAll(/[a-z]+/g)) if (m[0] === reversed) claims.push(m[0]);
  return claims;
}

/** "is a", "the letter a"; failing those, a single letter that ends a sentence ("Whatever. K."). */
function letterClaims(text: string): string[] {
  const claims = [...text.matchAll(/\b(?:is|letter)\s+["']?([a-z])["']?(?![a-z-])/g)].map((m) => m[1]!);
  if (claims.length > 0) return claims;
  return [...text.matchAll(/(?<![a-z'-])([a-z])["']?(?=\s*(?:[.!?]|$))/g)].map((m) => m[1]!);
}

/**
 * "X is bigger than Y" claims X for "which is bigger" (and Y for "which is smaller"); "the bigger
 * one is X" claims X; failing both, a reply naming exactly one of the two items claims it.
 */
function compareClaims(text: string, x: string, y: string, rel: string): string[] {
  const asked = rel === 'smaller' ? 'smaller' : 'bigger';
  const other = (item: string) => (item === x ? y : x);
  const claims: string[] = [];
  for (const m of text.matchAll(/\b(\d+|[a-z]+)\s+(?:is\s+)+(?:the\s+)?(bigger|smaller|larger)\b/g)) {
    const item = normalizeItem(m[1]!);
    if (item !== x && item !== y) continue;
    const said = m[2] === 'smaller' ? 'smaller' : 'bigger';
    claims.push(said === asked ? item : other(item));
  }
  for (const m of text.matchAll(/\b(?:bigger|smaller|larger)\s+(?:one\s+|number\s+|animal\s+)?is\s+(?:an?\s+|the\s+)?(\d+|[a-z]+)\b/g)) {
    const item = normalizeItem(m[1]!);
    if (item === x || item === y) claims.push(item);
  }
  if (claims.length > 0) return claims;
  const named = [x, y].filter((item) => hasWord(text, item));
  return named.length === 1 ? named : [];
}

function normalizeItem(token: string): string {
  return /^\d+$/.test(token) ? String(Number(token)) : token;
}

// --- style ---------------------------------------------------------------------------------------

function politeness(text: string): number {
  if (RUDE_MARKERS.some((m) => m.test(text))) return 0;
  if (POLITE_MARKERS.some((m) => m.test(text))) return 1;
  return 0.5;
}

/** 1 up to `limit` words, then linearly down to 0 at twice the limit. */
export function conciseness(words: number, limit: number): number {
  if (words <= limit) return 1;
  return Math.max(0, 1 - (words - limit) / limit);
}

function wellFormedness(response: string): number {
  const text = response.trim();
  if (text.length === 0) return 0;
  const words = text.toLowerCase().replace(/[.,!?]/g, '').split(/\s+/);
  const checks = [
    /[.!]$/.test(text),
    /^[A-Z0-9]/.test(text),
    !words.some((w, i) => i > 0 && w === words[i - 1]),
    /^[A-Za-z0-9 .,!?'’-]+$/.test(text),
  ];
  return checks.filter(Boolean).length / checks.length;
}

function wordCount(text: string): number {
  const t = text.trim();
  return t.length === 0 ? 0 : t.split(/\s+/).length;
}

function hasWord(text: string, word: string): boolean {
  return new RegExp(`(?<![a-z0-9-])${word.toLowerCase()}(?![a-z0-9-])`).test(text);
}

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
