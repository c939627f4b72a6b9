import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adherence, buildEvalCases, evaluateAdherence, formatAdherenceTable } from '../../src/gatt/evaluate.js';
import { trimHistory } from '../../src/gatt/history.js';
import { loadInstructionSet } from '../../src/gatt/instructions.js';
import { writeParquetFile } from '../../src/data/index.js';
import { readDialogueSeeds, splitSeeds } from '../../src/gatt/seeds.js';
import type { ReplySampler } from '../../src/gatt/synthesize.js';
import { UserError } from '../../src/errors.js';
import { packagePath } from '../../src/paths.js';
import type { ChatMessage } from '../../src/tokenizer/index.js';
import { worldCheckers } from '../../src/world/checkers.js';
import { applyInstructions } from '../../src/world/instructions.js';

const WORLD = loadInstructionSet(packagePath('data', 'world', 'gatt_instructions.json'), worldCheckers);
const SEEDS = [{ userTurns: ['a', 'b', 'c'] }, { userTurns: ['d'] }, { userTurns: ['e', 'f'] }];

test('the bundled instruction set: five families, seven instructions', () => {
  expect(WORLD.families).toEqual(['language', 'persona', 'style', 'ending', 'hobby']);
  expect(WORLD.instructions.map((i) => `${i.family}:${i.id}`)).toEqual([
    'language:zib',
    'persona:robot',
    'persona:pirate',
    'style:uppercase',
    'ending:thanks',
    'hobby:cats',
    'hobby:music',
  ]);
});

test('eval cases run on into the next seeds and cycle through single instructions, long then short', () => {
  const cases = buildEvalCases(SEEDS, WORLD, { cases: 9, turns: 4, mode: 'single' });
  expect(cases[0]!.userTurns).toEqual(['a', 'b', 'c', 'd']);
  expect(cases[1]!.userTurns).toEqual(['d', 'e', 'f', 'a']);
  expect(cases[2]!.userTurns).toEqual(['e', 'f', 'a', 'b']);
  expect(cases.map((c) => c.instructionIds[0])).toEqual(['zib', 'robot', 'pirate', 'uppercase', 'thanks', 'cats', 'music', 'zib', 'robot']);
  expect(cases[1]!.system).toBe("Answer like a robot. Begin every answer with 'BEEP.'");
  expect(cases[8]!.system).toBe('Persona: robot');
});

describe('adherence of a stub model that forgets after two turns (except cats)', () => {
  const cases = buildEvalCases(SEEDS, WORLD, { cases: 14, turns: 6, mode: 'single' });
  const idsBySystem = new Map(cases.map((c) => [c.system, c.instructionIds]));
  const prompts: ChatMessage[][] = [];
  const stub: ReplySampler = async (batch) => {
    prompts.push(...batch);
    return batch.map((p) => {
      const ids = idsBySystem.get(p[0]!.content)!;
      const turn = p.filter((m) => m.role === 'user').length;
      return turn <= 2 || ids.includes('cats') ? applyInstructions(ids, 'The sky is blue.') : 'The sky is blue.';
    });
  };

  test('table pinned', async () => {
    const table = await evaluateAdherence(stub, cases, WORLD, 6);
    // Turn t sees the system message once, then t user turns and t − 1 of its own answers.
    expect(prompts).toHaveLength(14 * 6);
    const last = prompts[prompts.length - 1]!;
    expect(last.filter((m) => m.role === 'system')).toHaveLength(1);
    expect(last.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(last[0]!.content).toBe('Hobby: music');
    expect(last[2]!.content).toBe('The sky is blue. I love music.'); // its own turn-1 answer, fed back
    expect(table.replies[13]).toEqual(['The sky is blue. I love music.', 'The sky is blue. I love music.', ...Array(4).fill('The sky is blue.')]);

    expect(Object.keys(table.byFamily)).toEqual(['language', 'persona', 'style', 'ending', 'hobby']);
    expect(table.byFamily.persona!.map((c) => [c.followed, c.count])).toEqual([[4, 4], [4, 4], [0, 4], [0, 4], [0, 4], [0, 4]]);
    expect(table.byFamily.hobby!.map((c) => [c.followed, c.count])).toEqual([[4, 4], [4, 4], [2, 4], [2, 4], [2, 4], [2, 4]]);
    expect(table.all.map((c) => [c.followed, c.count])).toEqual([[14, 14], [14, 14], [2, 14], [2, 14], [2, 14], [2, 14]]);
    expect(adherence(table.all[2]!)).toBeCloseTo(1 / 7, 12);
    expect(formatAdherenceTable(table, [1, 2, 4, 6, 20])).toBe(
      [
        'instruction adherence (%) by turn — 14 dialogues',
        'family         t=1     t=2     t=4     t=6',
        'language     100.0   100.0     0.0     0.0',
        'persona      100.0   100.0     0.0     0.0',
        'style        100.0   100.0     0.0     0.0',
        'ending       100.0   100.0     0.0     0.0',
        'hobby        100.0   100.0    50.0    50.0',
        'all          100.0   100.0    14.3    14.3',
      ].join('\n'),
    );
  });
});

test('trimHistory drops the oldest exchanges, keeping the system message and the current turn', () => {
  const m = (role: ChatMessage['role'], content: string): ChatMessage => ({ role, content });
  const dialogue = [m('system', 'S'), m('user', 'u1'), m('assistant', 'a1'), m('user', 'u2'), m('assistant', 'a2'), m('user', 'u3')];
  const chars = (ms: readonly ChatMessage[]) => ms.reduce((n, x) => n + x.content.length, 0);
  expect(trimHistory(dialogue, chars, 100)).toEqual({ messages: dialogue, droppedTurns: 0 });
  expect(trimHistory(dialogue, chars, 7)).toEqual({ messages: [dialogue[0], ...dialogue.slice(3)], droppedTurns: 1 });
  expect(trimHistory(dialogue, chars, 1)).toEqual({ messages: [dialogue[0], dialogue[5]], droppedTurns: 2 });
});

describe('dialogue seeds', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-gatt-seeds-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the bundled seeds: 500 dialogues of 2–20 user turns; the last 50 held out', async () => {
    const seeds = await readDialogueSeeds(packagePath('data', 'world', 'dialogues.jsonl'));
    expect(seeds).toHaveLength(500);
    expect(Math.min(...seeds.map((s) => s.userTurns.length))).toBe(2);
    expect(Math.max(...seeds.map((s) => s.userTurns.length))).toBe(20);
    const { train, eval: held } = splitSeeds(seeds, 50);
    expect([train.length, held.length]).toEqual([450, 50]);
    expect(held[0]).toBe(seeds[450]);
  });

  test('messages rows give their user turns (JSONL or Parquet); a bad row is named by file and row', async () => {
    const good = join(dir, 'good.jsonl');
    await writeFile(good, '{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":"z"}]}\n\n');
    expect(await readDialogueSeeds(good)).toEqual([{ userTurns: ['x', 'z'] }]);
    const parquet = join(dir, 'good.parquet');
    await writeParquetFile(parquet, [
      { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }, { role: 'user', content: 'z' }] },
      { messages: [{ role: 'user', content: 'w' }] },
    ]);
    expect(await readDialogueSeeds(parquet)).toEqual([{ userTurns: ['x', 'z'] }, { userTurns: ['w'] }]);
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, '{"user_turns":["x"]}\n{"user_turns":[""]}\n');
    await expect(readDialogueSeeds(bad)).rejects.toThrow(UserError);
    await expect(readDialogueSeeds(bad)).rejects.toThrow(`${bad} row 2: user_turns must be a non-empty list of non-empty strings`);
  });

  test('an instructions file with an unknown checker is refused, naming the key', async () => {
    const path = join(dir, 'ins.json');
    await writeFile(path, JSON.stringify({ families: ['f'], instructions: [{ id: 'x', family: 'f', long: 'L', short: 'S', checker: 'nope' }] }));
    expect(() => loadInstructionSet(path, worldCheckers)).toThrow(/instructions\[0\]\.checker: unknown checker "nope"/);
    // The checkers handed in decide what is known: with one that knows "nope" the file loads and judges with it.
    const own = loadInstructionSet(path, { ids: ['nope'], check: (id, reply) => id === 'nope' && reply.startsWith('L') });
    expect(own.checkers.check('nope', 'Like so')).toBe(true);
  });
});
