import { Rng } from '../../src/engine/rng.js';
import { INSTRUCTIONS } from '../../src/world/instructions.js';
import { judge } from '../../src/world/judge.js';
import { FILLERS, makeResponse, POLITE_CLOSERS, POLITE_OPENERS, RESPONSE_KINDS, RUDE_OPENERS } from '../../src/world/responses.js';
import { FAMILIES, TEMPLATES, USER_FRAMES, answerSentence, goldAnswer, parsePrompt, renderPrompt, sampleTask } from '../../src/world/tasks.js';

describe('tasks', () => {
  test('every template of every family parses back to the task it was rendered from', () => {
    const rng = new Rng(3);
    for (const family of FAMILIES) {
      for (let i = 0; i < 60; i++) {
        const task = sampleTask(rng, family);
        const prompt = renderPrompt(rng, task);
        expect({ prompt, task: parsePrompt(prompt) }).toEqual({ prompt, task });
      }
    }
    expect(FAMILIES.every((f) => TEMPLATES[f].length >= 3)).toBe(true);
  });

  test('gold answers and canonical sentences, by hand', () => {
    const cases: [string, string, string][] = [
      ['What is 3 plus 4?', '7', '3 plus 4 is 7.'],
      ['Take 5 away from 12.', '7', '12 minus 5 is 7.'],
      ['Name the capital of Kenya.', 'nairobi', 'The capital of Kenya is Nairobi.'],
      ['What does an owl say?', 'hoot', 'An owl says hoot.'],
      ['Tell me the colour of a carrot.', 'orange', 'A carrot is orange.'],
      ['How do you spell lemon backwards?', 'nomel', 'The word lemon backwards is n-o-m-e-l.'],
      ['Count the letters in house.', '5', 'The word house has 5 letters.'],
      ['What letter does tiger start with?', 't', 'The first letter of tiger is t.'],
      ['Which one is smaller, 9 or 4?', '4', '4 is smaller than 9.'],
      ['Which is larger, an elephant or a cat?', 'elephant', 'An elephant is larger than a cat.'],
      ['What word means the opposite of early?', 'late', 'The opposite of early is late.'],
    ];
    for (const [prompt, gold, sentence] of cases) {
      const task = parsePrompt(prompt)!;
      expect([prompt, goldAnswer(task), answerSentence(task, gold)]).toEqual([prompt, gold, sentence]);
    }
  });

  test('requests outside the world do not parse', () => {
    for (const text of ['Tell me a story.', 'What is 15 minus 18?', 'What is the capital of Mars?', 'Which is bigger, a cat or an owl?', 'What is the opposite of blue?']) {
      expect([text, parsePrompt(text)]).toEqual([text, null]);
    }
  });

  test('instruction texts and user frames never read as a request, and leave the request readable', () => {
    for (const ins of INSTRUCTIONS) {
      expect([ins.long, parsePrompt(ins.long)]).toEqual([ins.long, null]);
      expect(parsePrompt(`${ins.long} What is 2 plus 5?`)).toEqual({ family: 'add', args: { a: '2', b: '5' } });
    }
    for (const frame of USER_FRAMES) expect(parsePrompt(frame)).toBeNull();
  });

  test('padding and frames never state an answer: a right reply wrapped in all of them stays right', () => {
    const padding = [...POLITE_OPENERS, ...RUDE_OPENERS, ...FILLERS, ...POLITE_CLOSERS].join(' ');
    const rng = new Rng(5);
    for (const family of FAMILIES) {
      for (let i = 0; i < 30; i++) {
        const task = sampleTask(rng, family);
        const prompt = renderPrompt(rng, task);
        const reply = `${answerSentence(task, goldAnswer(task))} ${padding}`;
        expect([prompt, judge(prompt, reply).parts.correct]).toEqual([prompt, 1]);
      }
    }
  });

  test('response kinds rank as designed, on average over all families', () => {
    const rng = new Rng(11);
    const mean: Record<string, number> = {};
    for (const kind of RESPONSE_KINDS) {
      let sum = 0;
      let n = 0;
      for (const family of FAMILIES) {
        for (let i = 0; i < 20; i++) {
          const task = sampleTask(rng, family);
          sum += judge(renderPrompt(rng, task), makeResponse(rng, task, kind)).score;
          n++;
        }
      }
      mean[kind] = sum / n;
    }
    expect(mean.best).toBe(1);
    expect(mean.good!).toBeGreaterThan(0.9);
    for (const k of ['curt', 'rude', 'rambling', 'malformed']) {
      expect(mean[k]!).toBeGreaterThan(0.6);
      expect(mean[k]!).toBeLessThan(mean.good!);
    }
    expect(mean.wrong!).toBeLessThan(0.2);
    expect(mean.off_task!).toBeLessThan(0.2);
  });
});
