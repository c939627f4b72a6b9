import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors.js';
import { resolveModelPath } from '../model/hub.js';
import type { Tokenizer } from './types.js';

/** The parts of tokenizer_config.json we read (transformers writes many more). */
export interface TokenizerConfigJson {
  bos_token?: SpecialTokenField;
  eos_token?: SpecialTokenField;
  pad_token?: SpecialTokenField;
  unk_token?: SpecialTokenField;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  clean_up_tokenization_spaces?: boolean;
  chat_template?: string | Array<{ name: string; template: string }>;
  [key: string]: unknown;
}

/** Older configs write special tokens as `{"__type": "AddedToken", "content": "<s>", ...}`. */
type SpecialTokenField = string | { content: string } | null;

/** `model.type` values of tokenizer.json that @huggingface/tokenizers implements. */
const KNOWN_MODEL_TYPES = ['BPE', 'Unigram', 'WordPiece'] as const;

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) run by @huggingface/tokenizers:
 * BPE with byte fallback (Llama/SentencePiece-converted), byte-level BPE (GPT-2), Unigram.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly chatTemplate?: string;
  private readonly lib: HfLibTokenizer;
  /** Set when tokenizer_config.json decides BOS/EOS; otherwise tokenizer.json's post-processor does. */
  private readonly addBosEos?: { bos: boolean; eos: boolean };
  private readonly cleanUpSpaces: boolean;

  /** `where` names the source (a folder) in error messages. */
  constructor(tokenizerJson: object, config: TokenizerConfigJson, where: string) {
    // The library quietly falls back to a pass-through model for a type it does not know.
    const modelType = (tokenizerJson as { model?: { type?: unknown } }).model?.type;
    if (modelType !== undefined && !(KNOWN_MODEL_TYPES as readonly unknown[]).includes(modelType)) {
      throw new UserError(`${where}/tokenizer.json: model.type ${JSON.stringify(modelType)} is not supported (expected ${KNOWN_MODEL_TYPES.join(', ')})`);
    }
    try {
      this.lib = new HfLibTokenizer(tokenizerJson, config);
    } catch (e) {
      throw new UserError(`${where}/tokenizer.json: cannot build tokenizer: ${(e as Error).message}`, { cause: e });
    }
    replaceBpeCache(this.lib);
    let maxId = -1;
    for (const id of this.lib.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (field: SpecialTokenField | undefined, key: string): number | undefined => {
      const content = specialTokenContent(field);
      if (content === undefined) return undefined;
      const id = this.lib.token_to_id(content);
      if (id === undefined) throw new UserError(`${where}/tokenizer_config.json: ${key} '${content}' is not in the vocabulary`);
      return id;
    };
    const known = (token: string) => this.lib.token_to_id(token);
    const eosId = idOf(config.eos_token, 'eos_token') ?? known('</s>') ?? known('<|endoftext|>');
    if (eosId === undefined) {
      throw new UserError(`${where}/tokenizer_config.json: no eos_token, and the vocabulary has neither </s> nor <|endoftext|>`);
    }
    this.eosId = eosId;
    // GPT-2 style tokenizers have one <|endoftext|> for both ends.
    this.bosId = idOf(config.bos_token, 'bos_token') ?? known('<s>') ?? eosId;
    // Llama 2 has no pad token; <unk> is the usual stand-in. EOS only as a last resort.
    this.padId = idOf(config.pad_token, 'pad_token') ?? known('<pad>') ?? idOf(config.unk_token, 'unk_token') ?? eosId;

    if (typeof config.add_bos_token === 'boolean' || typeof config.add_eos_token === 'boolean') {
      this.addBosEos = { bos: config.add_bos_token ?? false, eos: config.add_eos_token ?? false };
    }
    // Exact round trips matter more here than transformers' historical default (true).
    this.cleanUpSpaces = config.clean_up_tokenization_spaces ?? false;
    const template = pickChatTemplate(config.chat_template);
    if (template !== undefined) this.chatTemplate = template;
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecialTokens = opts.addSpecialTokens ?? true;
    if (this.addBosEos === undefined) {
      return this.lib.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    }
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    if (!addSpecialTokens) return ids;
    return [...(this.addBosEos.bos ? [this.bosId] : []), ...ids, ...(this.addBosEos.eos ? [this.eosId] : [])];
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.lib.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }
}

/**
 * The library's BPE word cache is an LRU over a Map with a delete + set per hit; V8 Maps degrade
 * under that churn (encoding a 1 MB text a second time ran 3x slower than the first). A plain Map
 * emptied when full keeps the hits cheap. Other models have no such cache and are left alone.
 */
function replaceBpeCache(lib: HfLibTokenizer): void {
  const model = lib.model as unknown as { cache?: { get: unknown; put: unknown; clear: unknown } } | null;
  if (!model?.cache || typeof model.cache.get !== 'function' || typeof model.cache.put !== 'function') return;
  model.cache = new WordCache(200_000);
}

class WordCache {
  private readonly map = new Map<string, string[]>();
  constructor(private readonly capacity: number) {}
  get(key: string): string[] | undefined {
    return this.map.get(key);
  }
  put(key: string, value: string[]): void {
    if (this.map.size >= this.capacity) this.map.clear();
    this.map.set(key, value);
  }
  clear(): void {
    this.map.clear();
  }
}

function specialTokenContent(field: SpecialTokenField | undefined): string | undefined {
  if (field === undefined || field === null) return undefined;
  return typeof field === 'string' ? field : field.content;
}

/** A string, or transformers' list of named templates (the one named "default", else the first). */
function pickChatTemplate(field: TokenizerConfigJson['chat_template']): string | undefined {
  if (field === undefined || field === null) return undefined;
  if (typeof field === 'string') return field;
  return (field.find((t) => t.name === 'default') ?? field[0])?.template;
}

/** Read `dir/tokenizer.json` and `dir/tokenizer_config.json` (the latter may be absent). */
export async function loadTokenizer(dirOrHubId: string): Promise<HfTokenizer> {
  const dir = resolveModelPath(dirOrHubId); // a hub id: its snapshot in the local HF cache
  const tokenizerJson = await readJson(join(dir, 'tokenizer.json'), true);
  const config = (await readJson(join(dir, 'tokenizer_config.json'), false)) ?? {};
  return new HfTokenizer(tokenizerJson as object, config as TokenizerConfigJson, dir);
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value;
  } catch (e) {
    throw new UserError(`${path}: invalid JSON: ${(e as Error).message}`, { cause: e });
  }
}
