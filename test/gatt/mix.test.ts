import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gattConfigSchema } from '../../src/gatt/config.js';
import { drawMixRows, mixCount, mixedTrainFile, mixRowOf, readMixRows } from '../../src/gatt/mix.js';

const dir = mkdtempSync(join(tmpdir(), 'rlhf-gatt-mix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('mix rows: messages kept (extra columns dropped), prompt/completion as text or messages become a dialogue', () => {
  expect(mixRowOf({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], reward: 1.5 })).toEqual({
    messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }],
  });
  expect(mixRowOf({ prompt: 'Add 8 and 5.', completion: '13.' })).toEqual({
    messages: [{ role: 'user', content: 'Add 8 and 5.' }, { role: 'assistant', content: '13.' }],
  });
  expect(mixRowOf({ prompt: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }], completion: [{ role: 'assistant', content: 'A' }] })).toEqual({
    messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }],
  });
  expect(mixRowOf({ text: 'plain text' })).toBe('needs messages, or prompt and completion (a prompt alone only with data.mix_answers=model)');
  expect(mixRowOf({ messages: [{ role: 'user', content: 'Hi' }] })).toBe('the last message is not an assistant answer');
  expect(mixRowOf({ messages: 'Hi' })).toBe('messages: not a list of {role, content}');
});

test('mix count: round(synthesised rows × ratio)', () => {
  expect(mixCount(10, 1)).toBe(10);
  expect(mixCount(10, 0.25)).toBe(3); // 2.5 rounds up
  expect(mixCount(7, 2)).toBe(14);
  expect(mixCount(7, 0)).toBe(0);
});

test('mix rows are drawn without replacement, a fresh permutation each time the pool runs out, seeded', () => {
  const pool = ['a', 'b', 'c'];
  const drawn = drawMixRows(pool, 7, 3);
  expect(drawn).toHaveLength(7);
  // Each block of 3 is a permutation of the pool; the tail is a prefix of a third one.
  expect([...drawn.slice(0, 3)].sort()).toEqual(pool);
  expect([...drawn.slice(3, 6)].sort()).toEqual(pool);
  expect(pool).toContain(drawn[6]);
  expect(drawMixRows(pool, 7, 3)).toEqual(drawn);
  expect(drawMixRows(pool, 2, 3)).toEqual(drawn.slice(0, 2));
  expect(drawMixRows(pool, 0, 3)).toEqual([]);
  // Fewer than the pool: distinct rows.
  const big = Array.from({ length: 50 }, (_, i) => i);
  expect(new Set(drawMixRows(big, 40, 1)).size).toBe(40);
  expect(() => drawMixRows([], 2, 0)).toThrow(/data\.mix: the mix files hold no rows/);
});

test('mix files: every row read in order; a row of another shape names the file and row', async () => {
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl');
  writeFileSync(a, JSON.stringify({ prompt: 'P1', completion: 'C1' }) + '\n' + JSON.stringify({ messages: [{ role: 'user', content: 'P2' }, { role: 'assistant', content: 'C2' }] }) + '\n');
  writeFileSync(b, JSON.stringify({ prompt: 'P3', completion: 'C3' }) + '\n' + JSON.stringify({ text: 'no' }) + '\n');
  const rows = await readMixRows([a]);
  expect(rows.map((r) => r.messages[0]!.content)).toEqual(['P1', 'P2']);
  await expect(readMixRows([a, b])).rejects.toThrow(new RegExp(`data\\.mix: ${b.replace(/[.]/g, '\\.')} row 2: needs messages`));
});

test('data.mix_answers: model replaces each drawn row\'s answer by the answerer\'s reply to the rest of the row, each distinct row asked once; given never asks', async () => {
  const synth = join(dir, 'synth.jsonl');
  writeFileSync(synth, ['s1', 's2', 's3', 's4'].map((x) => JSON.stringify({ messages: [{ role: 'user', content: x }, { role: 'assistant', content: x }] })).join('\n') + '\n');
  const plain = join(dir, 'plain.jsonl');
  writeFileSync(plain, JSON.stringify({ prompt: [{ role: 'system', content: 'S' }, { role: 'user', content: 'P1' }], completion: 'C1' }) + '\n' + JSON.stringify({ prompt: 'P2', completion: 'C2' }) + '\n');
  const asked: string[][] = [];
  const answer = async (prompts: { role: string; content: string }[][]) => {
    asked.push(...prompts.map((p) => p.map((m) => `${m.role}:${m.content}`)));
    return prompts.map((p) => `model says ${p[p.length - 1]!.content}`);
  };
  const cfg = (mixAnswers: 'given' | 'model') =>
    gattConfigSchema.parse({ output_dir: dir, model: { path: dir }, data: { dialogues: plain, instructions: plain, mix: [plain], mix_ratio: 1.5, mix_answers: mixAnswers } });
  const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });

  const given = read(await mixedTrainFile(cfg('given'), synth, answer, () => {}));
  expect(asked).toEqual([]);
  const model = read(await mixedTrainFile(cfg('model'), synth, answer, () => {}));
  // 6 rows drawn from 2: each row three times, yet each asked once, without its answer.
  expect(asked.sort()).toEqual([['system:S', 'user:P1'], ['user:P2']]);
  expect(model.slice(0, 4)).toEqual(given.slice(0, 4));
  expect(model).toHaveLength(10);
  model.slice(4).forEach((row, i) => {
    const g = given[4 + i]!.messages;
    expect(row.messages).toEqual([...g.slice(0, -1), { role: 'assistant', content: `model says ${g[g.length - 2]!.content}` }]);
  });
});

test('with data.mix_answers: model a row may be a prompt alone; given refuses one, naming what to set', () => {
  expect(mixRowOf({ prompt: 'Add 8 and 5.' }, true)).toEqual({ messages: [{ role: 'user', content: 'Add 8 and 5.' }] });
  expect(mixRowOf({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }] }, true)).toEqual({
    messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }],
  });
  expect(mixRowOf({ prompt: 'Add 8 and 5.' })).toBe('needs messages, or prompt and completion (a prompt alone only with data.mix_answers=model)');
  expect(mixRowOf({ messages: [{ role: 'system', content: 'S' }] }, true)).toBe('the last message is neither a user turn nor an assistant answer');
});

test('data.mix_exclude: a row whose prompt is in an exclude file (case and white space folded) is never drawn', async () => {
  const synth = join(dir, 'synth-x.jsonl');
  writeFileSync(synth, Array.from({ length: 6 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `s${i}` }, { role: 'assistant', content: 'a' }] })).join('\n') + '\n');
  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, ['Add 8 and 5.', 'Spell cat backwards.', 'Name a red fruit.'].map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n');
  const heldOut = join(dir, 'held_out.jsonl');
  writeFileSync(heldOut, JSON.stringify({ prompt: 'spell  CAT backwards. ' }) + '\n');
  const cfg = gattConfigSchema.parse({ output_dir: dir, model: { path: dir }, data: { dialogues: prompts, instructions: prompts, mix: [prompts], mix_exclude: [heldOut], mix_answers: 'model' } });
  const logs: string[] = [];
  const out = await mixedTrainFile(cfg, synth, async (ps) => ps.map(() => 'ok'), (m) => logs.push(m));
  const plain = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { messages: { content: string }[] }).slice(6);
  expect(plain).toHaveLength(6);
  expect(new Set(plain.map((r) => r.messages[0]!.content))).toEqual(new Set(['Add 8 and 5.', 'Name a red fruit.']));
  expect(logs[0]).toContain('1 mix rows left out: their prompts are in data.mix_exclude');
});
