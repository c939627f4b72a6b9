/**
 * The config reference (docs/config-reference.md): one key table per stage, generated from the schemas
 * (the test in test/pipeline/readme.test.ts fails when the block is out of date; UPDATE_DOCS=1 rewrites it).
 */
import type { z } from 'zod';
import { schemaMarkdownTable } from '../config/index.js';
import { dpoConfigSchema } from '../dpo/config.js';
import { gattConfigSchema } from '../gatt/config.js';
import { ppoConfigSchema } from '../ppo/config.js';
import { pretrainConfigSchema } from '../pretrain/config.js';
import { rewardConfigSchema } from '../reward/config.js';
import { rsConfigSchema } from '../rs/config.js';
import { sftConfigSchema } from '../sft/config.js';
import { pipelineConfigSchema } from './config.js';

export const CONFIG_REFERENCE_BLOCK = 'config-reference';

export function configReferenceMarkdown(): string {
  const schemas: Array<[string, z.ZodType]> = [
    ['pipeline', pipelineConfigSchema],
    ['pretrain', pretrainConfigSchema],
    ['sft', sftConfigSchema],
    ['reward', rewardConfigSchema],
    ['ppo', ppoConfigSchema],
    ['dpo', dpoConfigSchema],
    ['gatt', gattConfigSchema],
    ['rs', rsConfigSchema],
  ];
  return schemas
    .map(([stage, schema]) => `<details><summary><code>stage: ${stage}</code></summary>\n\n${schemaMarkdownTable(schema)}\n\n</details>`)
    .join('\n\n');
}
