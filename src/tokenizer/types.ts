/**
 * The tokenizer contract the rest of the toolkit codes against (data collators, generation,
 * recipes). `HfTokenizer` is the implementation; tests may pass any object of this shape.
 */
export interface Tokenizer {
  /** Embedding rows needed: the largest id + 1 (added tokens included). */
  vocabSize: number;
  bosId: number;
  eosId: number;
  /** Distinct from eosId whenever the tokenizer has a pad (or unk) token. */
  padId: number;
  /** `addSpecialTokens` (default true) adds BOS/EOS as tokenizer_config.json / the post-processor say. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** `skipSpecialTokens` (default false) drops BOS/EOS/PAD and other special tokens. */
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
  /** The jinja `chat_template` from tokenizer_config.json, when it has one. */
  chatTemplate?: string;
}
