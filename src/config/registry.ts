/**
 * Stage name → its config schema. Each stage's `config.ts` registers its schema when imported
 * (the CLI imports every stage command), so `rlhf validate` can pick the schema a file's
 * `stage:` names. A stage schema describes everything but the `stage` key itself.
 */
import { z } from 'zod';
import { peel, schemaKeys } from './schema-walk.js';

const schemas = new Map<string, z.ZodType>();

/**
 * Sections that accept unknown keys (`z.object` rather than `z.strictObject`): a typo in them would
 * be dropped silently instead of reported, so stage schemas must not have any.
 */
export function lenientSections(schema: z.ZodType): string[] {
  const isLenient = (s: z.ZodType): boolean => {
    const core = peel(s).core;
    return core instanceof z.ZodObject && !(core.def.catchall instanceof z.ZodNever);
  };
  const root = isLenient(schema) ? ['(root)'] : [];
  return [...root, ...schemaKeys(schema).filter((k) => k.isSection && isLenient(k.schema)).map((k) => k.path.join('.'))];
}

export function registerStageSchema(stage: string, schema: z.ZodType): void {
  const lenient = lenientSections(schema);
  if (lenient.length > 0) {
    throw new Error(`stage schema '${stage}': use z.strictObject for ${lenient.join(', ')} (unknown keys must be errors)`);
  }
  const existing = schemas.get(stage);
  if (existing !== undefined && existing !== schema) {
    throw new Error(`stage schema '${stage}' is registered twice with different schemas`);
  }
  schemas.set(stage, schema);
}

export function stageSchema(stage: string): z.ZodType | undefined {
  return schemas.get(stage);
}

/** Registered stage names, sorted. */
export function registeredStages(): string[] {
  return [...schemas.keys()].sort();
}
