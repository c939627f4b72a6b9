import { readFileSync, writeFileSync } from 'node:fs';
import { replaceGeneratedBlock } from '../../src/config/index.js';
import { CONFIG_REFERENCE_BLOCK, configReferenceMarkdown } from '../../src/pipeline/docs.js';

const REFERENCE = 'docs/config-reference.md';

test('docs/config-reference.md matches the schemas (UPDATE_DOCS=1 npm test -- test/pipeline/readme rewrites it)', () => {
  const readme = readFileSync(REFERENCE, 'utf8');
  const expected = replaceGeneratedBlock(readme, CONFIG_REFERENCE_BLOCK, configReferenceMarkdown());
  if (process.env.UPDATE_DOCS === '1' && expected !== readme) writeFileSync(REFERENCE, expected);
  else expect(readme).toBe(expected);
});
