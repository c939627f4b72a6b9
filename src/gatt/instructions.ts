/**
 * The instruction set Ghost Attention keeps alive: read from a `gatt_instructions.json` file
 * (`{families, instructions: [{id, family, long, short, checker}]}`, as the world ships it), and
 * sampled the way Llama 2 §3.3 does it — a random combination of families, one instruction each,
 * written in its long or its short form ("Persona: robot"). Whether a reply follows an instruction
 * is decided by checkers handed in with the file (the bundled world's: src/world/checkers.ts,
 * wired by the pipeline and the CLI), so this stage knows no world.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';

export interface GattInstruction {
  id: string;
  family: string;
  long: string;
  short: string;
  /** Checker id (one of the set's `checkers.ids`): decides whether a reply follows the instruction. */
  checker: string;
}

/** Replies judged against instructions, by checker id. */
export interface InstructionCheckers {
  readonly ids: readonly string[];
  /** True when `reply` follows the instruction whose checker is `checkerId`. */
  check(checkerId: string, reply: string): boolean;
}

export interface InstructionSet {
  families: string[];
  instructions: GattInstruction[];
  checkers: InstructionCheckers;
}

/** One drawn instruction: which ones (at most one per family), the form, and the system text. */
export interface SampledInstruction {
  ids: string[];
  form: 'long' | 'short';
  text: string;
}

const fileSchema = z.looseObject({
  families: z.array(z.string().min(1)).min(1),
  instructions: z
    .array(
      z.looseObject({
        id: z.string().min(1),
        family: z.string().min(1),
        long: z.string().min(1),
        short: z.string().min(1),
        checker: z.string().min(1),
      }),
    )
    .min(1),
});

/** Read and check an instructions file against the checkers that will judge it; every problem names the file and the key. */
export function loadInstructionSet(path: string, checkers: InstructionCheckers): InstructionSet {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read instructions file ${path}: ${(e as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new UserError(`${path}: not a GAtt instructions file:\n  ${problems.join('\n  ')}`);
  }
  const { families, instructions } = parsed.data;
  const problems: string[] = [];
  const seen = new Set<string>();
  instructions.forEach((ins, i) => {
    if (seen.has(ins.id)) problems.push(`instructions[${i}].id: duplicate id "${ins.id}"`);
    seen.add(ins.id);
    if (!families.includes(ins.family)) problems.push(`instructions[${i}].family: "${ins.family}" is not in families (${families.join(', ')})`);
    if (!checkers.ids.includes(ins.checker)) problems.push(`instructions[${i}].checker: unknown checker "${ins.checker}" (known: ${checkers.ids.join(', ')})`);
  });
  if (problems.length > 0) throw new UserError(`${path}:\n  ${problems.join('\n  ')}`);
  const used = families.filter((f) => instructions.some((ins) => ins.family === f));
  return { families: used, instructions: instructions.map(({ id, family, long, short, checker }) => ({ id, family, long, short, checker })), checkers };
}

/** Does `reply` follow the instruction `id` of `set`? */
export function follows(set: InstructionSet, id: string, reply: string): boolean {
  return set.checkers.check(findInstruction(set, id).checker, reply);
}

export function findInstruction(set: InstructionSet, id: string): GattInstruction {
  const found = set.instructions.find((i) => i.id === id);
  if (found === undefined) throw new UserError(`unknown instruction id "${id}" (known: ${set.instructions.map((i) => i.id).join(', ')})`);
  return found;
}

/** The system text of a combination: long forms joined by spaces, short forms by "; " (as the world writes them). */
export function instructionText(set: InstructionSet, ids: readonly string[], form: 'long' | 'short'): string {
  const items = ids.map((id) => findInstruction(set, id));
  return form === 'long' ? items.map((i) => i.long).join(' ') : items.map((i) => i.short).join('; ');
}

/**
 * Draw a combination: 1..maxFamilies distinct families (uniform count), one instruction from each,
 * in the order the families were drawn; the short form with probability `shortFormProb`.
 */
export function sampleInstruction(
  rng: Rng,
  set: InstructionSet,
  opts: { maxFamilies: number; shortFormProb: number },
): SampledInstruction {
  const count = 1 + rng.int(Math.min(opts.maxFamilies, set.families.length));
  const families = rng.shuffle([...set.families]).slice(0, count);
  const ids = families.map((f) => {
    const members = set.instructions.filter((i) => i.family === f);
    return members[rng.int(members.length)]!.id;
  });
  const form = rng.uniform() < opts.shortFormProb ? 'short' : 'long';
  return { ids, form, text: instructionText(set, ids, form) };
}

