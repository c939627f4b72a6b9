/**
 * Zib, the world's toy second language (the "answer in French" of Llama 2 §3.3, shrunk): its own
 * words for the numbers 0–20, the colours and the few function words every canonical answer uses.
 * Translation is word-for-word, so a small model can learn it from the corpus and a checker can
 * verify it from surface forms.
 */

export const ZIB_NUMBERS: readonly string[] = [
  'mu', 'ka', 'ti', 'ro', 'pe', 'lu', 'sa', 'ne', 'vo', 'di', 'ku',
  'kuka', 'kuti', 'kuro', 'kupe', 'kulu', 'kusa', 'kune', 'kuvo', 'kudi', 'tiku',
];

export const ZIB_COLOURS: Readonly<Record<string, string>> = {
  red: 'rif',
  blue: 'bam',
  green: 'gol',
  yellow: 'yip',
  white: 'wum',
  black: 'bok',
  brown: 'bru',
  pink: 'pim',
  grey: 'gri',
  orange: 'oro',
};

export const ZIB_WORDS: Readonly<Record<string, string>> = {
  is: 'zo',
  the: 'ta',
  of: 'fi',
  says: 'sug',
  has: 'hab',
};

/** English word (lower case; numbers as digits) → Zib word. */
export const ENGLISH_TO_ZIB: Readonly<Record<string, string>> = {
  ...Object.fromEntries(ZIB_NUMBERS.map((z, n) => [String(n), z])),
  ...ZIB_COLOURS,
  ...ZIB_WORDS,
};

/** Zib word → English word. */
export const ZIB_TO_ENGLISH: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(ENGLISH_TO_ZIB).map(([en, zib]) => [zib, en]),
);

const WORD = /[A-Za-z]+|\d+/g;

/** Translate every word Zib has into Zib, keep the rest, and start each sentence with a capital. */
export function toZib(text: string): string {
  const translated = text.replace(WORD, (w) => {
    const zib = ENGLISH_TO_ZIB[w.toLowerCase()];
    if (zib === undefined) return w;
    return /^[A-Z]/.test(w) ? capitalize(zib) : zib;
  });
  return capitalizeSentences(translated);
}

/** Translate Zib words back to English (lower case; numbers as digits); other words unchanged. */
export function fromZib(text: string): string {
  return text.replace(WORD, (w) => ZIB_TO_ENGLISH[w.toLowerCase()] ?? w);
}

function capitalize(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1);
}

function capitalizeSentences(text: string): string {
  return text.replace(/(^|[.!?]\s+)([a-z])/g, (_m, pre: string, c: string) => pre + c.toUpperCase());
}
