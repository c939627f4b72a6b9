import type { Rng } from '../engine/rng.js';
import {
  ANIMAL_SIZES,
  ANIMAL_SOUNDS,
  CAPITALS,
  COLOURS,
  GAME_WORDS,
  MAX_NUMBER,
  OPPOSITES,
  THING_COLOURS,
  withArticle,
} from './facts.js';

/**
 * The world's task families: how a request is phrased (templates), how it is read back from text
 * (the same templates compiled to regexes — one source for both directions), and the canonical
 * good answer. The judge scores from the prompt text alone, so everything it needs is in the words.
 */

export const FAMILIES = [
  'add', 'subtract', 'capital', 'sound', 'colour', 'backwards', 'letters', 'first_letter', 'compare', 'opposite',
] as const;
export type Family = (typeof FAMILIES)[number];

/** One request: its family and its slot values (numbers as digits, nouns lower case). */
export interface Task {
  family: Family;
  args: Readonly<Record<string, string>>;
}

/**
 * Request phrasings per family. Slots: {a} {b} numbers; {country}; {an_animal} ("a cow");
 * {thing} ("the sky", "a banana"); {word}; {x} {y} compared items ("7", "a cat"); {rel}.
 */
export const TEMPLATES: Readonly<Record<Family, readonly string[]>> = {
  add: ['What is {a} plus {b}?', 'Add {a} and {b}.', 'What do you get if you add {a} and {b}?', 'Can you tell me what {a} plus {b} is?'],
  subtract: ['What is {a} minus {b}?', 'Take {b} away from {a}.', 'What do you get if you take {b} from {a}?', 'Subtract {b} from {a}.'],
  capital: ['What is the capital of {country}?', 'Which city is the capital of {country}?', 'Name the capital of {country}.', 'Tell me the capital of {country}.'],
  sound: ['What sound does {an_animal} make?', 'What does {an_animal} say?', 'Which sound does {an_animal} make?'],
  colour: ['What colour is {thing}?', 'Which colour is {thing}?', 'Tell me the colour of {thing}.'],
  backwards: ['Spell {word} backwards.', 'How do you spell {word} backwards?', 'Write the word {word} backwards.'],
  letters: ['How many letters are in the word {word}?', 'How many letters does {word} have?', 'Count the letters in {word}.'],
  first_letter: ['What is the first letter of {word}?', 'What letter does {word} start with?', 'Which letter comes first in {word}?'],
  compare: ['Which is {rel}, {x} or {y}?', 'Tell me which is {rel}, {x} or {y}.', 'Which one is {rel}, {x} or {y}?'],
  opposite: ['What is the opposite of {word}?', 'Tell me the opposite of {word}.', 'What word means the opposite of {word}?'],
};

/** Polite or casual openings a user may put before the request; the parser ignores them. */
export const USER_FRAMES: readonly string[] = ['', '', '', 'Please tell me. ', 'Hi! ', 'Quick question. ', 'Hello. ', 'I have a question. '];

// --- sampling ------------------------------------------------------------------------------------

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

/** A random task of `family` with slot values drawn from the fact table. */
export function sampleTask(rng: Rng, family: Family): Task {
  switch (family) {
    case 'add': {
      const a = rng.int(11);
      const b = rng.int(11);
      return { family, args: { a: String(a), b: String(b) } };
    }
    case 'subtract': {
      const a = rng.int(MAX_NUMBER + 1);
      const b = rng.int(a + 1);
      return { family, args: { a: String(a), b: String(b) } };
    }
    case 'capital':
      return { family, args: { country: pick(rng, Object.keys(CAPITALS)) } };
    case 'sound':
      return { family, args: { animal: pick(rng, Object.keys(ANIMAL_SOUNDS)) } };
    case 'colour':
      return { family, args: { thing: pick(rng, THING_COLOURS).thing } };
    case 'backwards':
    case 'letters':
    case 'first_letter':
      return { family, args: { word: pick(rng, GAME_WORDS) } };
    case 'compare': {
      const rel = pick(rng, ['bigger', 'bigger', 'smaller', 'larger']);
      if (rng.uniform() < 0.6) {
        const x = rng.int(MAX_NUMBER + 1);
        let y = rng.int(MAX_NUMBER);
        if (y >= x) y += 1; // distinct
        return { family, args: { x: String(x), y: String(y), rel } };
      }
      const animals = Object.keys(ANIMAL_SIZES);
      const x = pick(rng, animals);
      const others = animals.filter((a) => ANIMAL_SIZES[a] !== ANIMAL_SIZES[x]);
      return { family, args: { x, y: pick(rng, others), rel } };
    }
    case 'opposite':
      return { family, args: { word: pick(rng, Object.keys(OPPOSITES)) } };
  }
}

/** The request as a user would type it: a template of the family, maybe with a friendly opening. */
export function renderPrompt(rng: Rng, task: Task): string {
  const template = pick(rng, TEMPLATES[task.family]);
  return pick(rng, USER_FRAMES) + fillTemplate(template, task);
}

function fillTemplate(template: string, task: Task): string {
  return template.replace(/\{(\w+)\}/g, (_m, slot: string) => slotText(task, slot));
}

function slotText(task: Task, slot: string): string {
  const args = task.args;
  switch (slot) {
    case 'an_animal':
      return withArticle(args.animal!);
    case 'x':
    case 'y':
      return itemText(args[slot]!);
    default:
      return args[slot]!;
  }
}

/** A compared item as written: numbers as digits, animals with their article. */
export function itemText(item: string): string {
  return /^\d+$/.test(item) ? item : withArticle(item);
}

// --- parsing -------------------------------------------------------------------------------------

const alternation = (words: readonly string[]) => words.map(escapeRegex).join('|');
const SLOT_PATTERNS: Readonly<Record<string, string>> = {
  a: '(\\d{1,2})',
  b: '(\\d{1,2})',
  country: `(${alternation(Object.keys(CAPITALS))})`,
  an_animal: `(?:a|an) (${alternation(Object.keys(ANIMAL_SOUNDS))})`,
  thing: `(${alternation(THING_COLOURS.map((t) => t.thing))})`,
  word: '([a-z]{2,12})',
  x: `(\\d{1,2}|(?:a|an) (?:${alternation(Object.keys(ANIMAL_SIZES))}))`,
  y: `(\\d{1,2}|(?:a|an) (?:${alternation(Object.keys(ANIMAL_SIZES))}))`,
  rel: '(bigger|smaller|larger)',
};

interface CompiledTemplate {
  family: Family;
  regex: RegExp;
  slots: string[];
}

const COMPILED: readonly CompiledTemplate[] = FAMILIES.flatMap((family) =>
  TEMPLATES[family].map((template) => {
    const slots: string[] = [];
    // The final punctuation is optional: users (and models) drop it.
    const body = template.replace(/[.?]$/, '');
    const source = body
      .split(/(\{\w+\})/)
      .map((part) => {
        const slot = /^\{(\w+)\}$/.exec(part)?.[1];
        if (slot === undefined) return escapeRegex(part);
        slots.push(slot);
        return SLOT_PATTERNS[slot]!;
      })
      .join('');
    return { family, regex: new RegExp(`\\b${source}(?![a-z])`, 'i'), slots };
  }),
);

/**
 * Read the task out of a user message (anywhere in it, so a greeting or an instruction around the
 * request does no harm). Null when no family's phrasing matches or the values are not in the world.
 */
export function parsePrompt(text: string): Task | null {
  for (const { family, regex, slots } of COMPILED) {
    const m = regex.exec(text);
    if (m === null) continue;
    const raw: Record<string, string> = {};
    slots.forEach((slot, i) => (raw[slot] = m[i + 1]!));
    const task = normalizeArgs(family, raw);
    if (task !== null) return task;
  }
  return null;
}

function normalizeArgs(family: Family, raw: Record<string, string>): Task | null {
  switch (family) {
    case 'add':
    case 'subtract': {
      const a = Number(raw.a);
      const b = Number(raw.b);
      if (family === 'subtract' && b > a) return null; // the world has no negative numbers
      return { family, args: { a: String(a), b: String(b) } };
    }
    case 'capital': {
      const country = Object.keys(CAPITALS).find((c) => c.toLowerCase() === raw.country!.toLowerCase());
      return country === undefined ? null : { family, args: { country } };
    }
    case 'sound':
      return { family, args: { animal: raw.an_animal!.toLowerCase() } };
    case 'colour': {
      const thing = raw.thing!.toLowerCase();
      return { family, args: { thing } };
    }
    case 'backwards':
    case 'letters':
    case 'first_letter':
      return { family, args: { word: raw.word!.toLowerCase() } };
    case 'compare': {
      const x = raw.x!.toLowerCase().replace(/^an? /, '');
      const y = raw.y!.toLowerCase().replace(/^an? /, '');
      const numeric = /^\d+$/.test(x);
      if (numeric !== /^\d+$/.test(y) || x === y) return null;
      if (!numeric && ANIMAL_SIZES[x] === ANIMAL_SIZES[y]) return null;
      return { family, args: { x: numeric ? String(Number(x)) : x, y: numeric ? String(Number(y)) : y, rel: raw.rel!.toLowerCase() } };
    }
    case 'opposite': {
      const word = raw.word!.toLowerCase();
      return OPPOSITES[word] === undefined ? null : { family, args: { word } };
    }
  }
}

// --- answers -------------------------------------------------------------------------------------

/**
 * The right answer in its normal form: a number as digits, a name or word in lower case, a
 * backwards spelling as plain letters ("tac"), a compared item as its bare value ("12", "horse").
 */
export function goldAnswer(task: Task): string {
  const { args } = task;
  switch (task.family) {
    case 'add':
      return String(Number(args.a) + Number(args.b));
    case 'subtract':
      return String(Number(args.a) - Number(args.b));
    case 'capital':
      return CAPITALS[args.country!]!.toLowerCase();
    case 'sound':
      return ANIMAL_SOUNDS[args.animal!]!;
    case 'colour':
      return THING_COLOURS.find((t) => t.thing === args.thing)!.colour;
    case 'backwards':
      return [...args.word!].reverse().join('');
    case 'letters':
      return String(args.word!.length);
    case 'first_letter':
      return args.word!.charAt(0);
    case 'compare': {
      const bigger = compareSize(args.x!, args.y!) > 0 ? args.x! : args.y!;
      const smaller = bigger === args.x ? args.y! : args.x!;
      return args.rel === 'smaller' ? smaller : bigger;
    }
    case 'opposite':
      return OPPOSITES[args.word!]!;
  }
}

/** Positive when item x is bigger than item y (numbers by value, animals by size rank). */
function compareSize(x: string, y: string): number {
  if (/^\d+$/.test(x)) return Number(x) - Number(y);
  return ANIMAL_SIZES[x]! - ANIMAL_SIZES[y]!;
}

/** "t-a-c": a backwards answer as written, one letter at a time. */
export function spellOut(letters: string): string {
  return [...letters].join('-');
}

/** The canonical full-sentence answer stating `value` (the gold answer, or a wrong one). */
export function answerSentence(task: Task, value: string): string {
  const { args } = task;
  switch (task.family) {
    case 'add':
      return `${args.a} plus ${args.b} is ${value}.`;
    case 'subtract':
      return `${args.a} minus ${args.b} is ${value}.`;
    case 'capital':
      return `The capital of ${args.country} is ${capitalize(value)}.`;
    case 'sound':
      return `${capitalize(withArticle(args.animal!))} says ${value}.`;
    case 'colour':
      return `${capitalize(args.thing!)} is ${value}.`;
    case 'backwards':
      return `The word ${args.word} backwards is ${spellOut(value)}.`;
    case 'letters':
      return `The word ${args.word} has ${value} letters.`;
    case 'first_letter':
      return `The first letter of ${args.word} is ${value}.`;
    case 'compare': {
      const other = value === args.x ? args.y! : args.x!;
      return `${capitalize(itemText(value))} is ${args.rel} than ${itemText(other)}.`;
    }
    case 'opposite':
      return `The opposite of ${args.word} is ${value}.`;
  }
}

/** The answer alone, as a curt reply gives it: "7", "Paris", "t-a-c", "a horse". */
export function bareAnswer(task: Task, value: string): string {
  switch (task.family) {
    case 'capital':
      return capitalize(value);
    case 'backwards':
      return spellOut(value);
    case 'compare':
      return itemText(value);
    default:
      return value;
  }
}

/** A plausible wrong answer (off by one, a neighbour in the table, the other item, ...). */
export function wrongAnswer(rng: Rng, task: Task): string {
  const gold = goldAnswer(task);
  const { args } = task;
  const otherThan = (items: readonly string[]) => pick(rng, items.filter((v) => v !== gold));
  switch (task.family) {
    case 'add':
    case 'subtract':
    case 'letters': {
      const n = Number(gold);
      const delta = pick(rng, [-2, -1, 1, 1, 2]);
      return String(n + delta >= 0 ? n + delta : n + 1);
    }
    case 'capital':
      return otherThan(Object.values(CAPITALS).map((c) => c.toLowerCase()));
    case 'sound':
      return otherThan(Object.values(ANIMAL_SOUNDS));
    case 'colour':
      return otherThan(COLOURS);
    case 'backwards': {
      // Either forwards (a common slip) or two letters swapped.
      const word = args.word!;
      if (rng.uniform() < 0.5) return word;
      const letters = [...gold];
      const i = rng.int(letters.length - 1);
      [letters[i], letters[i + 1]] = [letters[i + 1]!, letters[i]!];
      const swapped = letters.join('');
      return swapped === gold ? word : swapped;
    }
    case 'first_letter': {
      const letters = [...new Set(args.word!.slice(1))].filter((c) => c !== gold);
      return letters.length > 0 ? pick(rng, letters) : 'z';
    }
    case 'compare':
      return gold === args.x ? args.y! : args.x!;
    case 'opposite':
      return otherThan(Object.keys(OPPOSITES).filter((w) => w !== args.word));
  }
}

/** The words a full answer restates from the question (to show it answers *this* question). */
export function subjectWords(task: Task): string[] {
  const { args } = task;
  switch (task.family) {
    case 'add':
    case 'subtract':
      return [args.a!, args.b!];
    case 'capital':
      return [args.country!.toLowerCase()];
    case 'sound':
      return [args.animal!];
    case 'colour':
      return [args.thing!.split(' ').pop()!];
    case 'compare':
      return [args.x!, args.y!];
    default:
      return [args.word!];
  }
}

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
