import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { evaluateWithGenerator, formatWorldScore, judgeResponses, readPromptsFile } from '../../src/world/evaluate.js';
import type { ChatMessage } from '../../src/world/generate.js';

const user = (content: string): ChatMessage[] => [{ role: 'user', content }];

describe('judgeResponses', () => {
  test('mean and per-family means, by hand', () => {
    const result = judgeResponses(
      [user('What is 3 plus 4?'), user('What is 1 plus 1?'), user('Spell cat backwards.'), user('Tell me a story.')],
      ['Sure. 3 plus 4 is 7.', '1 plus 1 is 3.', 'The word cat backwards is t-a-c.', 'No.'],
    );
    // 1, 0.18 (wrong), 0.91 (right, no polite phrase), 0 (not a world request)
    expect(result.scores).toEqual([1, 0.18, 0.91, 0]);
    expect(result.mean).toBeCloseTo((1 + 0.18 + 0.91) / 4, 10);
    expect(result.byFamily).toEqual({
      add: { mean: 0.59, count: 2 },
      backwards: { mean: 0.91, count: 1 },
      unknown: { mean: 0, count: 1 },
    });
    expect(formatWorldScore(result).split('\n')[0]).toBe('judge score: 0.5225 over 4 prompts');
  });

  test('prompt and response counts must match', () => {
    expect(() => judgeResponses([user('What is 3 plus 4?')], [])).toThrow(/1 prompts but 0 responses/);
  });
});

describe('evaluateWithGenerator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'world-eval-'));

  test('reads every prompt form, generates, judges', async () => {
    const file = join(dir, 'prompts.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({ prompt: user('What is the capital of Peru?') }),
        JSON.stringify({ prompt: 'What colour is snow?' }),
        JSON.stringify({ messages: [{ role: 'system', content: 'Persona: robot' }, ...user('What is 2 plus 2?')] }),
        '',
      ].join('\n'),
    );
    const seen: ChatMessage[][] = [];
    const result = await evaluateWithGenerator(async (prompts) => {
      seen.push(...prompts);
      return ['The capital of Peru is Lima.', 'Snow is white.', 'BEEP. 2 plus 2 is 4.'];
    }, file);
    expect(seen[1]).toEqual(user('What colour is snow?'));
    expect(seen[2]!.map((m) => m.role)).toEqual(['system', 'user']);
    expect(result.scores).toEqual([0.91, 0.91, 0.91]);
    expect(Object.keys(result.byFamily)).toEqual(['add', 'capital', 'colour']);
  });

  test('a bad row names the file and line', () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, JSON.stringify({ prompt: 'What is 1 plus 1?' }) + '\n{"prompt": 3}\n');
    expect(() => readPromptsFile(file)).toThrow(UserError);
    expect(() => readPromptsFile(file)).toThrow(`${file} line 2: prompt: expected a string or a list of {role, content} messages`);
    writeFileSync(file, '{oops\n');
    expect(() => readPromptsFile(file)).toThrow(new RegExp(`${file} line 1: not valid JSON`));
  });

  test('limit reads only the first rows', () => {
    const file = join(dir, 'many.jsonl');
    writeFileSync(file, ['What is 1 plus 1?', 'What is 2 plus 2?', 'What is 3 plus 3?'].map((p) => JSON.stringify({ prompt: p })).join('\n'));
    expect(readPromptsFile(file, 2)).toHaveLength(2);
  });
});
