import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import {
  commonSections,
  replaceGeneratedBlock,
  schemaHelpText,
  schemaMarkdownTable,
  typeLabel,
} from '../../src/config/index.js';
import { packagePath } from '../../src/paths.js';

const small = z.strictObject({
  optim: z
    .strictObject({
      lr: z.number().gt(0).default(3e-4).describe('Peak learning rate.'),
      kind: z.enum(['adamw', 'sgd']).default('adamw').describe('Which | optimizer.'),
    })
    .prefault({}),
  path: z.string().describe('Training file.'),
});

describe('schema docs', () => {
  it('renders a Markdown table, one row per leaf key', () => {
    expect(schemaMarkdownTable(small)).toBe(
      [
        '| key | type | default | description |',
        '| --- | --- | --- | --- |',
        '| `optim.lr` | number > 0 | `0.0003` | Peak learning rate. |',
        '| `optim.kind` | adamw \\| sgd | `adamw` | Which \\| optimizer. |',
        '| `path` | string | *required* | Training file. |',
      ].join('\n'),
    );
  });

  it('renders --help text', () => {
    expect(schemaHelpText(small)).toBe(
      [
        'Config keys (override any with key=value):',
        '  optim.lr  (number > 0; default 0.0003)',
        '      Peak learning rate.',
        '  optim.kind  (adamw | sgd; default adamw)',
        '      Which | optimizer.',
        '  path  (string; required)',
        '      Training file.',
      ].join('\n'),
    );
  });

  it.each([
    [z.number().int().min(1).max(8), 'integer in [1, 8]'],
    [z.number().gt(0).nullable().default(null), 'number > 0 | null'],
    [z.number().min(0).lt(1), 'number in [0, 1)'],
    [z.tuple([z.number(), z.number()]), '[number, number]'],
    [z.array(z.string()), 'list of string'],
    [z.union([z.literal('auto'), z.number()]), '"auto" | number'],
  ])('labels types (%#)', (schema, label) => {
    expect(typeLabel(schema)).toBe(label);
  });

  it('replaces a generated block and insists on its markers', () => {
    const doc = 'a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb';
    expect(replaceGeneratedBlock(doc, 'x', 'new')).toBe('a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb');
    expect(() => replaceGeneratedBlock(doc, 'y', 'new')).toThrow("generated block 'y' not found");
  });

  // configs/README.md documents the shared sections with a table generated from the schema.
  // Regenerate after changing a section: RLHF_UPDATE_DOCS=1 npm test -- test/config/docs.test.ts
  it('configs/README.md shows the current shared-section keys', () => {
    const path = packagePath('configs', 'README.md');
    const text = readFileSync(path, 'utf8');
    const expected = replaceGeneratedBlock(text, 'common-sections', schemaMarkdownTable(z.strictObject(commonSections())));
    if (process.env.RLHF_UPDATE_DOCS === '1' && text !== expected) writeFileSync(path, expected);
    else expect(text).toBe(expected);
  });
});
