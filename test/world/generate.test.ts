import { createHash } from 'node:crypto';
import { check } from '../../src/world/checkers.js';
import { generateWorld, renderLlama2, strengthForGap, WORLD_SIZES } from '../../src/world/generate.js';
import { INSTRUCTIONS } from '../../src/world/instructions.js';
import { judge } from '../../src/world/judge.js';

const SMALL = 0.02;

const SAFETY_FILES = [
  'sft_safety.jsonl', 'preferences_safety.jsonl', 'preferences_safety_eval.jsonl', 'prompts_safety.jsonl', 'prompts_safety_harmful.jsonl', 'prompts_safety_eval.jsonl',
];

/** SHA-256 over the files (`only` the safety files, or every other file — their pin predates them). */
function digest(files: Map<string, string>, only: 'safety' | 'others' = 'others'): string {
  const h = createHash('sha256');
  for (const [name, content] of files) if (SAFETY_FILES.includes(name) === (only === 'safety')) h.update(name + '\0' + content + '\0');
  return h.digest('hex');
}

const rows = (files: Map<string, string>, name: string) =>
  files.get(name)!.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('generateWorld', () => {
  const world = generateWorld({ seed: 0, scale: SMALL });

  test('is deterministic: a pinned SHA-256 for seed 0 at a small scale', () => {
    expect(digest(world)).toBe('f316c0c485e5b8fd12d91a6603aed1c2a76301e15728f5224449965047e93300');
    expect(digest(world, 'safety')).toBe('5b691d90069a1ecab11091d8d8ddf2f70eb530dfb7a4c3404380a5f1f1bd647b');
  });

  test('the same seed gives the same bytes, another seed other bytes', () => {
    expect(digest(generateWorld({ seed: 0, scale: SMALL }))).toBe(digest(world));
    expect(digest(generateWorld({ seed: 1, scale: SMALL }))).not.toBe(digest(world));
  });

  test('every file is there, with row counts that follow the scale', () => {
    expect([...world.keys()]).toEqual([
      'corpus.txt', 'sft.jsonl', 'sft_eval.jsonl', 'preferences.jsonl', 'preferences_eval.jsonl',
      'prompts.jsonl', 'prompts_eval.jsonl', 'dialogues.jsonl', 'preferences_contrast.jsonl', ...SAFETY_FILES, 'gatt_instructions.json',
    ]);
    expect(rows(world, 'preferences_safety.jsonl')).toHaveLength(Math.round(WORLD_SIZES.preferences_safety * SMALL));
    expect(rows(world, 'prompts_safety_eval.jsonl')).toHaveLength(Math.round(WORLD_SIZES.prompts_safety_eval * SMALL));
    expect(rows(world, 'sft.jsonl')).toHaveLength(Math.round(WORLD_SIZES.sft * SMALL));
    expect(rows(world, 'preferences.jsonl')).toHaveLength(Math.round(WORLD_SIZES.preferences * SMALL));
    expect(rows(world, 'preferences_contrast.jsonl')).toHaveLength(Math.round(WORLD_SIZES.preference_contrasts * SMALL));
    expect(rows(world, 'preferences_eval.jsonl')).toHaveLength(Math.round(WORLD_SIZES.preferences_eval * SMALL));
    expect(rows(world, 'prompts_eval.jsonl')).toHaveLength(Math.round(WORLD_SIZES.prompts_eval * SMALL));
  });

  test('preference rows: judged order, strength from the score gap, TRL conversational form', () => {
    for (const r of [...rows(world, 'preferences.jsonl'), ...rows(world, 'preferences_contrast.jsonl')]) {
      const prompt = r.prompt as { role: string; content: string }[];
      const chosen = (r.chosen as { role: string; content: string }[])[0]!;
      const rejected = (r.rejected as { role: string; content: string }[])[0]!;
      expect(prompt.map((m) => m.role)).toEqual(['user']);
      expect(chosen.role).toBe('assistant');
      const cs = judge(prompt, chosen.content).score;
      const rs = judge(prompt, rejected.content).score;
      expect([cs, rs]).toEqual([r.chosen_score, r.rejected_score]);
      expect(r.strength).toBe(strengthForGap(cs - rs));
    }
  });

  test('contrast pairs: their own file, pairs that differ in the stated answer only; none in the natural files', () => {
    const contrasts = rows(world, 'preferences_contrast.jsonl');
    expect(rows(world, 'preferences.jsonl').every((r) => r.contrast === undefined)).toBe(true);
    expect(contrasts.length).toBeGreaterThan(0);
    for (const r of contrasts) {
      expect(r.contrast).toBe(true);
      const prompt = r.prompt as { role: string; content: string }[];
      const right = judge(prompt, (r.chosen as { content: string }[])[0]!.content).parts;
      const wrong = judge(prompt, (r.rejected as { content: string }[])[0]!.content).parts;
      expect([right.correct, wrong.correct]).toEqual([1, 0]);
      // Same frame: the same opener/closer and the same surface form (on_task can differ: "0 minus 0" answered "0" restates the subject).
      expect(wrong.polite).toBe(right.polite);
      expect(wrong.well_formed).toBe(right.well_formed);
    }
    expect(rows(world, 'preferences_eval.jsonl').every((r) => r.contrast === undefined)).toBe(true);
  });

  test('system prompts only in dialogues of one or two turns; instructions mostly followed', () => {
    let followed = 0;
    let instructed = 0;
    for (const r of rows(world, 'sft.jsonl')) {
      const messages = r.messages as { role: string; content: string }[];
      const turns = messages.filter((m) => m.role === 'user').length;
      const system = messages.find((m) => m.role === 'system');
      if (system === undefined) continue;
      expect(turns).toBeLessThanOrEqual(2);
      const ins = INSTRUCTIONS.filter((i) => system.content.includes(i.long) || system.content.includes(i.short));
      for (const m of messages.filter((x) => x.role === 'assistant')) {
        for (const i of ins) {
          instructed++;
          if (check(i.checker, m.content)) followed++;
        }
      }
    }
    expect(instructed).toBeGreaterThan(10);
    expect(followed / instructed).toBeGreaterThan(0.75);
  });

  test('GAtt dialogue seeds hold 2 to 20 user turns', () => {
    for (const r of rows(world, 'dialogues.jsonl')) {
      const turns = r.user_turns as string[];
      expect(turns.length).toBeGreaterThanOrEqual(2);
      expect(turns.length).toBeLessThanOrEqual(20);
    }
  });
});

describe('strengthForGap', () => {
  test('thresholds 0.5 / 0.25 / 0.1 / 0.02', () => {
    expect([0.6, 0.5, 0.3, 0.25, 0.12, 0.1, 0.05, 0.02, 0.01].map(strengthForGap)).toEqual([
      'significantly_better', 'significantly_better', 'better', 'better', 'slightly_better', 'slightly_better',
      'negligibly_better', 'negligibly_better', null,
    ]);
  });
});

describe('renderLlama2', () => {
  test('the Llama 2 chat shape without <s> markers, one newline after <</SYS>>', () => {
    expect(
      renderLlama2([
        { role: 'system', content: 'Persona: robot' },
        { role: 'user', content: 'What is 1 plus 1?' },
        { role: 'assistant', content: 'BEEP. 1 plus 1 is 2.' },
        { role: 'user', content: 'Spell cat backwards.' },
        { role: 'assistant', content: 'BEEP. The word cat backwards is t-a-c.' },
      ]),
    ).toBe(
      '[INST] <<SYS>>\nPersona: robot\n<</SYS>>\nWhat is 1 plus 1? [/INST] BEEP. 1 plus 1 is 2. [INST] Spell cat backwards. [/INST] BEEP. The word cat backwards is t-a-c.',
    );
  });
});
