import { toZib } from './zib.js';

/**
 * System instructions for Ghost Attention, in the manner of Llama 2 §3.3: a few families (language,
 * persona, style, ending, hobby), each instruction with a long form, a short form ("Persona:
 * robot") and a checker id. Every rule is a surface-form rule (a first word, a last phrase, a
 * letter case, a topic word, a word-for-word translation), so a small model can satisfy it and a
 * checker can verify it without a model.
 */

export const INSTRUCTION_FAMILIES = ['language', 'persona', 'style', 'ending', 'hobby'] as const;
export type InstructionFamily = (typeof INSTRUCTION_FAMILIES)[number];

export interface Instruction {
  id: string;
  family: InstructionFamily;
  long: string;
  short: string;
  /** The checker that decides whether a reply follows it (`check(checker, reply)`). */
  checker: string;
}

export const INSTRUCTIONS: readonly Instruction[] = [
  {
    id: 'zib',
    family: 'language',
    long: 'Always answer in Zib. Use the Zib words for numbers, colours and the words is, the, of, says and has.',
    short: 'Language: Zib',
    checker: 'zib',
  },
  {
    id: 'robot',
    family: 'persona',
    long: "Answer like a robot. Begin every answer with 'BEEP.'",
    short: 'Persona: robot',
    checker: 'robot',
  },
  {
    id: 'pirate',
    family: 'persona',
    long: "Answer like a pirate. Begin every answer with 'Arr.'",
    short: 'Persona: pirate',
    checker: 'pirate',
  },
  {
    id: 'uppercase',
    family: 'style',
    long: 'Write every answer in uppercase letters only.',
    short: 'Style: uppercase',
    checker: 'uppercase',
  },
  {
    id: 'thanks',
    family: 'ending',
    long: "End every answer with 'Thanks for asking.'",
    short: 'Ending: thanks',
    checker: 'thanks',
  },
  {
    id: 'cats',
    family: 'hobby',
    long: 'You love cats. Mention cats in every answer.',
    short: 'Hobby: cats',
    checker: 'cats',
  },
  {
    id: 'music',
    family: 'hobby',
    long: 'You love music. Mention music in every answer.',
    short: 'Hobby: music',
    checker: 'music',
  },
];

export function instructionById(id: string): Instruction {
  const found = INSTRUCTIONS.find((i) => i.id === id);
  if (found === undefined) throw new Error(`unknown instruction id "${id}" (known: ${INSTRUCTIONS.map((i) => i.id).join(', ')})`);
  return found;
}

/**
 * Rewrite a reply so it follows the instructions (for demonstrations in the SFT data and corpus).
 * Applied in a fixed order — additions first, then the prefix, then translation, then letter
 * case — so any combination of one instruction per family still satisfies every checker.
 */
export function applyInstructions(ids: readonly string[], reply: string): string {
  const order: InstructionFamily[] = ['hobby', 'ending', 'persona', 'language', 'style'];
  const chosen = ids.map(instructionById).sort((a, b) => order.indexOf(a.family) - order.indexOf(b.family));
  return chosen.reduce((text, ins) => applyOne(ins.id, text), reply);
}

/**
 * The world's rewrite rules as GAtt takes them (a repair for the instruction ids they know), passed
 * in by the pipeline and the CLI: the world's stand-in for a teacher that follows instructions.
 */
export const worldRepair: { readonly ids: readonly string[]; apply(ids: readonly string[], reply: string): string } = {
  ids: INSTRUCTIONS.map((i) => i.id),
  apply: applyInstructions,
};

function applyOne(id: string, text: string): string {
  switch (id) {
    case 'zib':
      return toZib(text);
    case 'robot':
      return `BEEP. ${text}`;
    case 'pirate':
      return `Arr. ${text}`;
    case 'uppercase':
      return text.toUpperCase();
    case 'thanks':
      return `${text} Thanks for asking.`;
    case 'cats':
      return `${text} I love cats.`;
    case 'music':
      return `${text} I love music.`;
    default:
      throw new Error(`unknown instruction id "${id}"`);
  }
}

/** The system text for a combination: long forms joined, or short forms joined with "; ". */
export function instructionText(ids: readonly string[], form: 'long' | 'short'): string {
  const items = ids.map(instructionById);
  return form === 'long' ? items.map((i) => i.long).join(' ') : items.map((i) => i.short).join('; ');
}
