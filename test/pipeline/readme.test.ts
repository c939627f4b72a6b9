import { readFileSync, writeFileSync } from 'node:fs';
import { replaceGeneratedBlock } from '../../src/config/index.js';
import { CONFIG_REFERENCE_BLOCK, configReferenceMarkdown } from '../../src/pipeline/docs.js';

test('README.md config reference matches the schemas (UPDATE_README=1 npm test -- test/pipeline/readme rewrites it)', () => {
  const readme = readFileSync('README.md', 'utf8');
  const expected = replaceGeneratedBlock(readme, CONFIG_REFERENCE_BLOCK, configReferenceMarkdown());
  if (process.env.UPDATE_README === '1' && expected !== readme) writeFileSync('README.md', expected);
  else expect(readme).toBe(expected);
});
