import { LLAMA2_CHAT_TEMPLATE } from './templates.js';
import type { BpeTrainResult } from './bpeTrainer.js';

/**
 * The Hugging Face files for a tokenizer our trainer made: `tokenizer.json` (byte-level BPE,
 * the layout `tokenizers` writes for GPT-2) and `tokenizer_config.json`. Both load in
 * `transformers` (PreTrainedTokenizerFast) as well as in our loader.
 */

/** Special tokens, in id order (ids 0..4). `<pad>` is distinct from EOS so padding never hides EOS. */
export const TRAINED_SPECIAL_TOKENS = {
  pad: '<pad>',
  bos: '<s>',
  eos: '</s>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
} as const;

const SPECIALS_IN_ID_ORDER: string[] = [
  TRAINED_SPECIAL_TOKENS.pad,
  TRAINED_SPECIAL_TOKENS.bos,
  TRAINED_SPECIAL_TOKENS.eos,
  TRAINED_SPECIAL_TOKENS.imStart,
  TRAINED_SPECIAL_TOKENS.imEnd,
];

export const NUM_TRAINED_SPECIAL_TOKENS = SPECIALS_IN_ID_ORDER.length;

/** Vocabulary: special tokens, then the 256 byte symbols in byte order, then one per merge. */
export function trainedTokenizerJson(bpe: BpeTrainResult): object {
  const vocab: Record<string, number> = {};
  SPECIALS_IN_ID_ORDER.forEach((token, id) => (vocab[token] = id));
  bpe.symbols.forEach((symbol, i) => (vocab[symbol] = NUM_TRAINED_SPECIAL_TOKENS + i));
  const bos = TRAINED_SPECIAL_TOKENS.bos;
  const bosId = vocab[bos]!;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS_IN_ID_ORDER.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    // BOS on every encoded text, as Llama does (transformers reads this, not add_bos_token).
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "left right": byte-level symbols never contain a space, so the old string form is unambiguous.
      merges: bpe.merges.map(([left, right]) => `${left} ${right}`),
    },
  };
}

export function trainedTokenizerConfig(): object {
  const addedTokensDecoder: Record<string, object> = {};
  SPECIALS_IN_ID_ORDER.forEach((content, id) => {
    addedTokensDecoder[String(id)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  });
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: TRAINED_SPECIAL_TOKENS.bos,
    eos_token: TRAINED_SPECIAL_TOKENS.eos,
    pad_token: TRAINED_SPECIAL_TOKENS.pad,
    add_bos_token: true,
    add_eos_token: false,
    // Decoding must give back exactly the text that was encoded.
    clean_up_tokenization_spaces: false,
    additional_special_tokens: [TRAINED_SPECIAL_TOKENS.imStart, TRAINED_SPECIAL_TOKENS.imEnd],
    added_tokens_decoder: addedTokensDecoder,
    chat_template: LLAMA2_CHAT_TEMPLATE,
  };
}
