import { z } from 'zod';
import { lenientSections, registerStageSchema, registeredStages, stageSchema } from '../../src/config/registry.js';

describe('stage schema registry', () => {
  it('registers and looks up stage schemas', () => {
    const a = z.strictObject({ x: z.number().default(1) });
    registerStageSchema('zeta', a);
    registerStageSchema('alpha', z.strictObject({}));
    registerStageSchema('zeta', a); // same schema again: harmless (module imported twice)
    expect(registeredStages()).toEqual(['alpha', 'zeta']);
    expect(stageSchema('zeta')).toBe(a);
    expect(stageSchema('nope')).toBeUndefined();
    expect(() => registerStageSchema('zeta', z.strictObject({}))).toThrow("stage schema 'zeta' is registered twice");
  });

  it('refuses sections that would drop unknown keys silently', () => {
    const lenient = z.strictObject({ a: z.object({ b: z.number().default(1) }).prefault({}), c: z.strictObject({}) });
    expect(lenientSections(lenient)).toEqual(['a']);
    expect(lenientSections(z.object({}))).toEqual(['(root)']);
    expect(() => registerStageSchema('bad', lenient)).toThrow("stage schema 'bad': use z.strictObject for a (unknown keys must be errors)");
  });
});
