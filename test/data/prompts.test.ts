import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promptKey, readExcludedPrompts, readPromptRows, readPrompts, samplingPrompts, withoutExcluded } from '../../src/data/prompts.js';
import { loadConfig } from '../../src/config/index.js';
import { packagePath } from '../../src/paths.js';
import { rsConfigSchema } from '../../src/rs/config.js';

const TRAIN = packagePath('data', 'world', 'prompts.jsonl');
const HELD_OUT = packagePath('data', 'world', 'prompts_eval.jsonl');

/** The held-out prompts' user texts, read here without the module under test. */
function heldOutTexts(): Set<string> {
  return new Set(
    readFileSync(HELD_OUT, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { prompt: { content: string }[] }).prompt.map((m) => m.content.trim().toLowerCase()).join('\n')),
  );
}

describe('prompt exclusion', () => {
  test('a prompt key folds case and white space, keeps roles and turns apart', () => {
    expect(promptKey('Add 8 and 5.')).toBe(promptKey([{ role: 'user', content: '  add 8   and 5. ' }]));
    expect(promptKey('Add 8 and 5.')).not.toBe(promptKey('Add 8 and 6.'));
    expect(promptKey([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }])).not.toBe(
      promptKey([{ role: 'user', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]),
    );
  });

  test("the world's training prompts hold held-out prompts (331 rows), and the guard drops every one", async () => {
    const train = await readPrompts(TRAIN);
    const held = heldOutTexts();
    const textOf = (p: { content: string }[]) => p.map((m) => m.content.trim().toLowerCase()).join('\n');
    // The bundled files overlap: sampling them without the guard would train on evaluation prompts.
    expect(train.filter((p) => held.has(textOf(p)))).toHaveLength(331);

    const excluded = await readExcludedPrompts([HELD_OUT]);
    const { kept, dropped } = withoutExcluded(train, (p) => p, excluded);
    expect(dropped).toBe(331);
    expect(kept).toHaveLength(4000 - 331);
    expect(kept.filter((p) => held.has(textOf(p)))).toEqual([]);
  });

  test('the rs stage excludes the held-out prompts by default and in the shipped world config', () => {
    const defaults = rsConfigSchema.parse({});
    expect(defaults.data.exclude).toEqual(['data/world/prompts_eval.jsonl']);
    const shipped = loadConfig(packagePath('configs', 'rs', 'world_lora.yaml'), [], { stage: 'rs', schema: rsConfigSchema });
    expect(shipped.config.data.prompts).toBe('data/world/prompts.jsonl');
    expect(shipped.config.data.exclude).toEqual(['data/world/prompts_eval.jsonl']);
  });

  test('an unreadable exclude file is an error naming it', async () => {
    await expect(readExcludedPrompts([packagePath('data', 'world', 'no_such.jsonl')])).rejects.toThrow(/no_such\.jsonl/);
  });

  test("is_safety rides along (absent = false); a non-boolean one is an error naming the file and row", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prompts-'));
    try {
      const file = join(dir, 'p.jsonl');
      writeFileSync(file, ['{"prompt":"How do I scare a cat?","is_safety":true}', '{"prompt":"Hi","is_safety":false}', '{"prompt":"Hello"}', '{"prompt":"how do i scare a  cat?"}'].join('\n') + '\n');
      expect((await readPromptRows(file)).map((r) => r.isSafety)).toEqual([true, false, false, false]);
      // Distinct prompts: the repeat (same key) keeps the first row's flag.
      expect((await samplingPrompts(file, [])).map((p) => [p.prompt[0]!.content, p.isSafety])).toEqual([['How do I scare a cat?', true], ['Hi', false], ['Hello', false]]);
      writeFileSync(file, '{"prompt":"Hi"}\n{"prompt":"Hello","is_safety":"yes"}\n');
      await expect(readPromptRows(file)).rejects.toThrow(`${file}: prompt row 2: is_safety: expected true or false, got "yes"`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
