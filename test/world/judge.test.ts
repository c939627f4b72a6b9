import { combine, conciseness, judge } from '../../src/world/judge.js';

/** [prompt, response, pinned score, pinned correct] — hand-written good and bad replies per family. */
const CASES: [string, string, number, number][] = [
  // add: the best reply, plain, bare, wrong, self-contradicting, rambling, rude, doubled word
  ['What is 3 plus 4?', 'Sure. 3 plus 4 is 7.', 1, 1],
  ['What is 3 plus 4?', '3 plus 4 is 7.', 0.91, 1],
  ['What is 3 plus 4?', '7', 0.757, 1],
  ['What is 3 plus 4?', '3 plus 4 is 8.', 0.18, 0],
  ['What is 3 plus 4?', '3 plus 4 is 7. Or maybe 3 plus 4 is 8.', 0.399, 0.3],
  [
    'What is 3 plus 4?',
    'Sure. 3 plus 4 is 7. Let me think about this. Learning new things is fun. I will try my best to answer. You can ask me more questions. Let me say it one more time. 3 plus 4 is 7.',
    0.73,
    1,
  ],
  ['What is 3 plus 4?', 'Ugh. 3 plus 4 is 7.', 0.82, 1],
  ['What is 3 plus 4?', '3 plus plus 4 is 7.', 0.865, 1],
  ['What is 3 plus 4?', '', 0, 0],
  ['Subtract 5 from 12.', '12 minus 5 is 7.', 0.91, 1],
  ['Subtract 5 from 12.', '12 minus 5 is 17.', 0.18, 0],
  ['What is the capital of France?', 'Of course. The capital of France is Paris.', 1, 1],
  ['What is the capital of France?', 'The capital of France is Rome.', 0.18, 0],
  ['What is the capital of France?', 'paris', 0.712, 1],
  ['What sound does an owl make?', 'Happy to help. An owl says hoot.', 1, 1],
  ['What sound does an owl make?', 'An owl says moo.', 0.18, 0],
  ['What colour is the sky?', 'The sky is blue.', 0.91, 1],
  ['What colour is the sky?', 'A cow says moo.', 0.12, 0],
  ['Spell cat backwards.', 'Sure. The word cat backwards is t-a-c.', 1, 1],
  ['Spell cat backwards.', 'The word cat backwards is c-a-t.', 0.18, 0],
  ['How many letters are in the word apple?', 'The word apple has 5 letters.', 0.91, 1],
  ['How many letters are in the word apple?', 'The word apple has 4 letters.', 0.18, 0],
  ['What is the first letter of apple?', 'The first letter of apple is a.', 0.91, 1],
  ['What is the first letter of apple?', 'Whatever. E.', 0.136, 0],
  ['Which is bigger, 7 or 12?', '12 is bigger than 7.', 0.91, 1],
  ['Which is bigger, 7 or 12?', '7 is bigger than 12.', 0.18, 0],
  ['Which is smaller, a horse or a mouse?', 'Good question. A mouse is smaller than a horse.', 1, 1],
  // A true statement in the other direction still answers the question.
  ['Which is smaller, a horse or a mouse?', 'A horse is bigger than a mouse.', 0.91, 1],
  ['What is the opposite of hot?', 'The opposite of hot is cold.', 0.91, 1],
  ['What is the opposite of hot?', 'The opposite of hot is hot.', 0.12, 0],
  // Instruction-following replies are judged on their meaning: Zib, robot + uppercase + thanks.
  ['What is 3 plus 4?', 'Ro plus pe zo ne.', 0.91, 1],
  ['What is 3 plus 4?', 'BEEP. 3 PLUS 4 IS 7. THANKS FOR ASKING.', 1, 1],
];

describe('judge', () => {
  test.each(CASES)('%s → %j scores %d', (prompt, response, score, correct) => {
    const j = judge(prompt, response);
    expect(j.score).toBeCloseTo(score, 4);
    expect(j.parts.correct).toBe(correct);
  });

  test('every wrong answer scores below every right one', () => {
    const right = CASES.filter((c) => c[3] === 1 && c[1] !== '').map((c) => c[2]);
    const wrong = CASES.filter((c) => c[3] === 0).map((c) => c[2]);
    expect(Math.max(...wrong)).toBeLessThan(Math.min(...right));
  });

  test('parts of a bare answer, by hand', () => {
    // "7": right (1), bare (0.6), neutral (0.5), short (1), no full stop (3 of 4 checks).
    expect(judge('What is 3 plus 4?', '7').parts).toEqual({ correct: 1, on_task: 0.6, polite: 0.5, concise: 1, well_formed: 0.75 });
  });

  test('reads the request from the last user message and ignores the system prompt', () => {
    const messages = [
      { role: 'system', content: 'Persona: robot' },
      { role: 'user', content: 'What is the capital of Peru?' },
      { role: 'assistant', content: 'BEEP. The capital of Peru is Lima.' },
      { role: 'user', content: 'Hi! What is 2 plus 2?' },
    ];
    const j = judge(messages, '2 plus 2 is 4.');
    expect(j.family).toBe('add');
    expect(j.score).toBeCloseTo(0.91, 4);
  });

  test('a prompt that is not a world request scores 0 with no family', () => {
    expect(judge('Tell me a story.', 'Once upon a time.')).toEqual({
      score: 0,
      parts: { correct: 0, on_task: 0, polite: 0, concise: 0, well_formed: 0 },
      family: null,
    });
  });

  test('"not sure" is not politeness', () => {
    expect(judge('What is 3 plus 4?', 'I am not sure, but 3 plus 4 is 7.').parts.polite).toBe(0.5);
  });
});

describe('combine and conciseness', () => {
  test('weights, by hand', () => {
    // style = 0.3·1 + 0.2·0.5 + 0.2·0 + 0.3·0.5 = 0.55; right: 0.1 + 0.9·0.55 = 0.595
    expect(combine({ correct: 1, on_task: 1, well_formed: 0.5, polite: 0, concise: 0.5 })).toBeCloseTo(0.595, 6);
    // wrong: 0.2·0.55 = 0.11
    expect(combine({ correct: 0, on_task: 1, well_formed: 0.5, polite: 0, concise: 0.5 })).toBeCloseTo(0.11, 6);
  });

  test('length penalty is flat to the limit, then linear to 0 at twice it', () => {
    expect(conciseness(10, 13)).toBe(1);
    expect(conciseness(13, 13)).toBe(1);
    expect(conciseness(19.5, 13)).toBeCloseTo(0.5, 6);
    expect(conciseness(40, 13)).toBe(0);
  });
});
