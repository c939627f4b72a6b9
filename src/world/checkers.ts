import { ENGLISH_TO_ZIB, ZIB_TO_ENGLISH } from './zib.js';

/**
 * Instruction checkers: does a reply follow an instruction? Surface rules only, case-insensitive
 * except for `uppercase`, so instructions combine (an uppercase robot still begins with "BEEP.").
 */

const CHECKERS: Readonly<Record<string, (reply: string) => boolean>> = {
  /** At least one Zib word, and none of the English words Zib has its own word for (digits included). */
  zib: (reply) => {
    const words = reply.toLowerCase().match(/[a-z]+|\d+/g) ?? [];
    return words.some((w) => ZIB_TO_ENGLISH[w] !== undefined) && !words.some((w) => ENGLISH_TO_ZIB[w] !== undefined || /^\d+$/.test(w));
  },
  robot: (reply) => /^\s*beep\./i.test(reply),
  pirate: (reply) => /^\s*arr\./i.test(reply),
  /** Has letters, and none of them lower case. */
  uppercase: (reply) => /[A-Z]/.test(reply) && !/[a-z]/.test(reply),
  thanks: (reply) => /thanks for asking\.?\s*$/i.test(reply),
  cats: (reply) => /\bcats\b/i.test(reply),
  music: (reply) => /\bmusic\b/i.test(reply),
};

export const CHECKER_IDS: readonly string[] = Object.keys(CHECKERS);

/** True when `reply` follows the instruction whose checker id is `checkerId`. */
export function check(checkerId: string, reply: string): boolean {
  const checker = CHECKERS[checkerId];
  if (checker === undefined) throw new Error(`unknown checker "${checkerId}" (known: ${CHECKER_IDS.join(', ')})`);
  return checker(reply);
}

/** The world's checkers as a stage takes them (GAtt's instruction set): passed in by the pipeline and the CLI. */
export const worldCheckers: { readonly ids: readonly string[]; check(checkerId: string, reply: string): boolean } = { ids: CHECKER_IDS, check };
