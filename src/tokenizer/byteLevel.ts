/**
 * The GPT-2 byte-level scheme shared by the trainer and Hugging Face's `ByteLevel`
 * pre-tokenizer/decoder: every UTF-8 byte maps to one printable character, so any text is
 * covered by 256 base symbols and no `<unk>` is ever needed.
 */

/** byte (0..255) → the printable character GPT-2 uses for it (space → 'Ġ', '\n' → 'Ċ'). */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** The inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

function buildByteToChar(): string[] {
  // Printable Latin-1 bytes keep their own code point; the rest are shifted to 256+ in byte order.
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = String.fromCharCode(printable(b) ? b : 256 + shifted++);
  }
  return out;
}

/**
 * The GPT-2 pre-tokenization pattern, as `ByteLevel` with `use_regex: true` applies it (identical
 * to the one in @huggingface/tokenizers and the Rust crate): contractions, letter runs, digit runs,
 * punctuation runs, each with an optional leading space; whitespace runs stop before a word.
 */
export const GPT2_SPLIT_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const utf8 = new TextEncoder();

/** A pre-token's UTF-8 bytes written as byte-level characters ("hé" → "hÃ©"). */
export function toByteChars(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}
