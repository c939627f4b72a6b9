/**
 * Fill in defaults from the schema before interpolation, so `${output_dir}` can refer to a key the
 * user never wrote. zod would fill them too, but only after `${...}` had to be resolved.
 */
import { z } from 'zod';
import { peel } from './schema-walk.js';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `value` with every missing key that has a default filled in; unknown keys are kept (the validator reports them). */
export function fillDefaults(schema: z.ZodType, value: unknown): unknown {
  const { core, default: fallback } = peel(schema);
  const v = value === undefined && fallback !== undefined ? structuredClone(fallback.value) : value;
  if (core instanceof z.ZodObject && isPlainObject(v)) {
    const out: Record<string, unknown> = { ...v };
    for (const [key, child] of Object.entries(core.shape as Record<string, z.ZodType>)) {
      const filled = fillDefaults(child, out[key]);
      if (filled !== undefined) out[key] = filled;
    }
    return out;
  }
  if (core instanceof z.ZodArray && Array.isArray(v)) {
    return v.map((item) => fillDefaults(core.def.element as z.ZodType, item));
  }
  return v;
}
