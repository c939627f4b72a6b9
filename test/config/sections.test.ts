import { z } from 'zod';
import { commonSections, optimSection, runSection, schemaKeys, trainSection } from '../../src/config/index.js';

const common = z.strictObject(commonSections());

describe('shared sections', () => {
  it('give every key a help text and a default (the schema is the one source of both)', () => {
    const keys = schemaKeys(common);
    expect(keys.length).toBe(34);
    const lacking = keys.filter((k) => k.peeled.description === undefined || k.peeled.default === undefined);
    expect(lacking.map((k) => k.path.join('.'))).toEqual([]);
  });

  it('take stage-specific defaults', () => {
    expect(optimSection({ lr: 2e-5, grad_clip: null }).parse({})).toEqual({
      lr: 2e-5,
      betas: [0.9, 0.95],
      eps: 1e-8,
      weight_decay: 0.1,
      grad_clip: null,
      grad_accum: 1,
    });
    expect(trainSection({ steps: 50, epochs: 2 }).parse({ batch_size: 4 })).toMatchObject({ steps: 50, epochs: 2, batch_size: 4 });
  });

  it('reject out-of-range values', () => {
    const bad = (schema: z.ZodType, value: unknown) => schema.safeParse(value).success;
    expect(bad(optimSection(), { lr: 0 })).toBe(false);
    expect(bad(optimSection(), { betas: [0.9, 1] })).toBe(false);
    expect(bad(optimSection(), { grad_accum: 0 })).toBe(false);
    expect(bad(trainSection(), { epochs: 0 })).toBe(false);
    expect(bad(runSection, { name: 'has space' })).toBe(false);
    expect(bad(runSection, { name: 'exp-1.2_b' })).toBe(true);
  });
});
