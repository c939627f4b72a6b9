import { check, CHECKER_IDS } from '../../src/world/checkers.js';
import { INSTRUCTIONS, INSTRUCTION_FAMILIES, applyInstructions, instructionText } from '../../src/world/instructions.js';
import { fromZib, toZib } from '../../src/world/zib.js';

/** [checker, reply, follows?] — hand-written replies that do and do not follow each instruction. */
const CASES: [string, string, boolean][] = [
  ['zib', 'Ta capital fi France zo Paris.', true],
  ['zib', 'Ro plus pe zo ne.', true],
  ['zib', 'The capital of France is Paris.', false],
  ['zib', 'Ro plus pe zo 7.', false], // a digit left untranslated
  ['zib', 'Paris.', false], // no Zib word at all
  ['robot', 'BEEP. 3 plus 4 is 7.', true],
  ['robot', '3 plus 4 is 7. BEEP.', false],
  ['robot', 'BEEP 3 plus 4 is 7.', false],
  ['pirate', 'Arr. A cow says moo.', true],
  ['pirate', 'ARR. A COW SAYS MOO.', true],
  ['pirate', 'A cow says moo.', false],
  ['uppercase', 'THE SKY IS BLUE.', true],
  ['uppercase', 'The sky is blue.', false],
  ['uppercase', '7.', false], // no letters: nothing shows the case
  ['thanks', 'The sky is blue. Thanks for asking.', true],
  ['thanks', 'Thanks for asking. The sky is blue.', false],
  ['cats', 'The sky is blue. I love cats.', true],
  ['cats', 'A cat says meow.', false],
  ['music', 'I love music. 2 plus 2 is 4.', true],
  ['music', 'A bird says tweet.', false],
];

describe('checkers', () => {
  test.each(CASES)('%s: %j → %s', (checker, reply, follows) => {
    expect(check(checker, reply)).toBe(follows);
  });

  test('every checker has a passing and a failing case', () => {
    for (const id of CHECKER_IDS) {
      expect(CASES.some(([c, , f]) => c === id && f)).toBe(true);
      expect(CASES.some(([c, , f]) => c === id && !f)).toBe(true);
    }
  });

  test('unknown checker ids are an error', () => {
    expect(() => check('french', 'Bonjour.')).toThrow(/unknown checker "french"/);
  });
});

describe('instructions', () => {
  test('each instruction has a long form, a short form "Family: name" and a known checker', () => {
    for (const ins of INSTRUCTIONS) {
      expect(CHECKER_IDS).toContain(ins.checker);
      expect(ins.short).toMatch(/^[A-Z][a-z]+: [A-Za-z]+$/);
      expect(ins.long.length).toBeGreaterThan(ins.short.length);
    }
    expect(instructionText(['robot', 'cats'], 'short')).toBe('Persona: robot; Hobby: cats');
  });

  test('applyInstructions satisfies every checker of every combination of one instruction per family', () => {
    const reply = 'Sure. The capital of France is Paris.';
    const byFamily = INSTRUCTION_FAMILIES.map((f) => [null, ...INSTRUCTIONS.filter((i) => i.family === f)]);
    let combos = 0;
    const visit = (depth: number, chosen: string[]) => {
      if (depth === byFamily.length) {
        const out = applyInstructions(chosen, reply);
        for (const id of chosen) expect([chosen, out, check(INSTRUCTIONS.find((i) => i.id === id)!.checker, out)]).toEqual([chosen, out, true]);
        combos++;
        return;
      }
      for (const ins of byFamily[depth]!) visit(depth + 1, ins === null ? chosen : [...chosen, ins.id]);
    };
    visit(0, []);
    expect(combos).toBe(2 * 3 * 2 * 2 * 3);
  });

  test('a combination applied, by hand', () => {
    expect(applyInstructions(['uppercase', 'robot', 'zib', 'thanks'], 'The sky is blue.')).toBe('BEEP. TA SKY ZO BAM. THANKS FOR ASKING.');
  });
});

describe('zib', () => {
  test('translates word for word, keeps capitals at sentence starts, and back', () => {
    expect(toZib('3 plus 4 is 7.')).toBe('Ro plus pe zo ne.');
    expect(toZib('Sure. The sky is blue.')).toBe('Sure. Ta sky zo bam.');
    expect(toZib('The word apple has 5 letters.')).toBe('Ta word apple hab lu letters.');
    expect(fromZib('Ro plus pe zo ne.')).toBe('3 plus 4 is 7.');
  });
});
