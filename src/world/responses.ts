import type { Rng } from '../engine/rng.js';
import { FAMILIES, answerSentence, bareAnswer, goldAnswer, sampleTask, wrongAnswer, type Task } from './tasks.js';

/**
 * Assistant replies of every quality the data needs: the best answer, good ones, curt, rude,
 * rambling, wrong, malformed and off-task. The judge tells them apart from the text alone, so each
 * kind differs from the good answer in ways a small reward model can see.
 */

export const RESPONSE_KINDS = ['best', 'good', 'curt', 'rude', 'rambling', 'wrong', 'malformed', 'off_task'] as const;
export type ResponseKind = (typeof RESPONSE_KINDS)[number];

export const POLITE_OPENERS: readonly string[] = ['Sure.', 'Of course.', 'Happy to help.', 'Good question.', 'Sure thing.'];
export const POLITE_CLOSERS: readonly string[] = ['I hope this helps.', 'Glad to help.', 'Have a nice day.'];
export const RUDE_OPENERS: readonly string[] = ['Obviously.', 'Ugh.', 'That is easy.', 'Everyone knows that.', 'What a silly question.', 'Whatever.'];
export const HEDGES: readonly string[] = ['I think', 'Maybe', 'I am not sure, but'];
/**
 * Padding for rambling replies. None holds a number, a single letter, a colour, a city, a sound or
 * an opposite word, so padding never reads as a second (wrong) answer.
 */
export const FILLERS: readonly string[] = [
  'Let me think about this.',
  'This is something many people ask.',
  'I like questions like this one.',
  'There are many things to learn.',
  'Let me say it one more time.',
  'Learning new things is fun.',
  'I will try my best to answer.',
  'It is nice to learn together.',
  'You can ask me more questions.',
  'Thank you for your question.',
  'That is all I know about it.',
  'I hope you like this answer.',
];

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

/** A reply of `kind` to `task`. Deterministic given the generator state. */
export function makeResponse(rng: Rng, task: Task, kind: ResponseKind): string {
  const gold = goldAnswer(task);
  switch (kind) {
    case 'best':
      return `${pick(rng, POLITE_OPENERS)} ${answerSentence(task, gold)}`;
    case 'good':
      return politeFrame(rng, answerSentence(task, gold), 0.5, 0.25);
    case 'curt':
      return curt(rng, task, gold);
    case 'rude': {
      const answer = rng.uniform() < 0.5 ? answerSentence(task, gold) : curt(rng, task, gold);
      return `${pick(rng, RUDE_OPENERS)} ${capitalizeFirst(answer)}`;
    }
    case 'rambling':
      return rambling(rng, answerSentence(task, gold));
    case 'wrong': {
      const value = wrongAnswer(rng, task);
      const u = rng.uniform();
      if (u < 0.25) return curt(rng, task, value);
      const sentence = u < 0.65 ? hedge(rng, answerSentence(task, value)) : answerSentence(task, value);
      return politeFrame(rng, sentence, 0.4, 0.2);
    }
    case 'malformed':
      return malformed(rng, answerSentence(task, gold));
    case 'off_task': {
      const others = FAMILIES.filter((f) => f !== task.family);
      const other = sampleTask(rng, pick(rng, others));
      return politeFrame(rng, answerSentence(other, goldAnswer(other)), 0.4, 0.2);
    }
  }
}

/**
 * A contrast pair: one reply frame (bare answer or full sentence, the same opener and closer)
 * stating the gold answer and a wrong one. Only correctness tells the two apart, so a reward model
 * trained on such pairs has to check the answer instead of leaning on style.
 */
export function makeContrastPair(rng: Rng, task: Task): { right: string; wrong: string } {
  const wrongValue = wrongAnswer(rng, task);
  const frame = rng.getState();
  // Both texts replay the same draws, so they differ in the stated answer only.
  const withValue = (value: string): string => {
    rng.setState(frame);
    return rng.uniform() < 0.25 ? curt(rng, task, value) : politeFrame(rng, answerSentence(task, value), 0.5, 0.25);
  };
  const right = withValue(goldAnswer(task));
  return { right, wrong: withValue(wrongValue) };
}

function politeFrame(rng: Rng, sentence: string, pOpener: number, pCloser: number): string {
  const parts = [sentence];
  if (rng.uniform() < pOpener) parts.unshift(pick(rng, POLITE_OPENERS));
  if (rng.uniform() < pCloser) parts.push(pick(rng, POLITE_CLOSERS));
  return parts.join(' ');
}

/** The bare answer, sometimes without its capital or full stop, sometimes as "It is X.". */
function curt(rng: Rng, task: Task, value: string): string {
  const bare = bareAnswer(task, value);
  const u = rng.uniform();
  if (u < 0.4) return capitalizeFirst(bare) + '.';
  if (u < 0.7) return bare.toLowerCase();
  return `It is ${bare}.`;
}

function hedge(rng: Rng, sentence: string): string {
  const first = sentence.split(' ')[0]!;
  // Keep a capital only on names and digits: "I think the capital of ...", "Maybe 3 plus 4 is 8."
  const lowered = /^(The|A|An)$/.test(first) ? sentence.charAt(0).toLowerCase() + sentence.slice(1) : sentence;
  return `${pick(rng, HEDGES)} ${lowered}`;
}

function rambling(rng: Rng, sentence: string): string {
  const parts: string[] = [];
  if (rng.uniform() < 0.5) parts.push(pick(rng, POLITE_OPENERS));
  parts.push(sentence);
  const fillers = rng.shuffle([...FILLERS]).slice(0, 3 + rng.int(4));
  parts.push(...fillers);
  if (rng.uniform() < 0.5) parts.push(sentence);
  return parts.join(' ');
}

/** A right answer with a surface fault: a doubled word, no capital or full stop, a stutter at the end. */
function malformed(rng: Rng, sentence: string): string {
  const words = sentence.replace(/\.$/, '').split(' ');
  const u = rng.uniform();
  if (u < 0.35) {
    const i = rng.int(words.length);
    words.splice(i, 0, words[i]!);
    return words.join(' ') + '.';
  }
  if (u < 0.65) return words.join(' ').toLowerCase();
  const last = words[words.length - 1]!;
  return [...words, last, last].join(' ');
}

function capitalizeFirst(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
