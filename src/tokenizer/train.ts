import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { countPreTokens, trainByteLevelBpe } from './bpeTrainer.js';
import { NUM_TRAINED_SPECIAL_TOKENS, trainedTokenizerConfig, trainedTokenizerJson } from './trainedFiles.js';

export interface TrainTokenizerResult {
  /** Final vocabulary (special tokens + 256 bytes + merges); below the request on a small corpus. */
  vocabSize: number;
  numMerges: number;
  uniqueWords: number;
  corpusBytes: number;
}

/** The smallest vocabulary: the special tokens plus the 256 byte symbols. */
export const MIN_VOCAB_SIZE = NUM_TRAINED_SPECIAL_TOKENS + 256;

/**
 * Train a byte-level BPE tokenizer on UTF-8 text files and write `tokenizer.json` +
 * `tokenizer_config.json` into `outDir`. Pairs seen fewer than `minPairCount` times are never
 * merged. Same files and settings → byte-identical output.
 */
export async function trainTokenizer(opts: {
  corpusFiles: string[];
  vocabSize: number;
  outDir: string;
  minPairCount?: number;
}): Promise<TrainTokenizerResult> {
  if (opts.corpusFiles.length === 0) throw new UserError('tokenizer train: give at least one --corpus file');
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < MIN_VOCAB_SIZE) {
    throw new UserError(`tokenizer train: --vocab-size must be an integer >= ${MIN_VOCAB_SIZE} (special tokens + 256 bytes)`);
  }
  checkWritableOutDir(opts.outDir);
  const counts = new Map<string, number>();
  let corpusBytes = 0;
  for (const file of opts.corpusFiles) {
    let text: string;
    try {
      const bytes = await readFile(file);
      corpusBytes += bytes.length;
      text = bytes.toString('utf8');
    } catch (e) {
      throw new UserError(`tokenizer train: cannot read corpus file ${file}: ${(e as Error).message}`, { cause: e });
    }
    countPreTokens(text, counts);
  }
  const bpe = trainByteLevelBpe(counts, {
    numSymbols: opts.vocabSize - NUM_TRAINED_SPECIAL_TOKENS,
    ...(opts.minPairCount === undefined ? {} : { minPairCount: opts.minPairCount }),
  });
  try {
    await mkdir(opts.outDir, { recursive: true });
    await writeJsonAtomic(join(opts.outDir, 'tokenizer.json'), trainedTokenizerJson(bpe));
    await writeJsonAtomic(join(opts.outDir, 'tokenizer_config.json'), trainedTokenizerConfig());
  } catch (e) {
    throw new UserError(`tokenizer train: cannot write ${opts.outDir}: ${(e as Error).message}`, { cause: e });
  }
  return {
    vocabSize: NUM_TRAINED_SPECIAL_TOKENS + bpe.symbols.length,
    numMerges: bpe.merges.length,
    uniqueWords: counts.size,
    corpusBytes,
  };
}

/** Write to a temp name, then rename: a reader never sees half a file. */
async function writeJsonAtomic(path: string, value: object): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Fail before training, not after it: the nearest existing ancestor of `outDir` must be a writable folder. */
function checkWritableOutDir(outDir: string): void {
  let dir = resolve(outDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  let why = '';
  try {
    if (!statSync(dir).isDirectory()) why = `${dir} is a file, not a folder`;
    else accessSync(dir, constants.W_OK);
  } catch (e) {
    why = `${dir} is not writable (${(e as Error).message})`;
  }
  if (why) throw new UserError(`tokenizer train: cannot write --out ${outDir}: ${why}`);
}
