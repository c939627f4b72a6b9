/** The pretrain stage's tokenizer: trained on the corpus, or copied from a given folder. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { UserError } from '../errors.js';
import { loadTokenizer, type HfTokenizer } from '../tokenizer/hfTokenizer.js';
import { LLAMA2_CHAT_TEMPLATE } from '../tokenizer/templates.js';
import { trainTokenizer } from '../tokenizer/train.js';
import { copyTokenizerFiles as copyTokenizerFolderFiles } from '../tokenizer/files.js';

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.md', '']);

/**
 * Fill `outDir` with tokenizer.json + tokenizer_config.json and load it. `given` (a folder) is
 * copied; otherwise a byte-level BPE of `vocabSize` is trained on the corpus (text files as they
 * are, so `rlhf tokenizer train` on the same files gives the same tokenizer; datasets through
 * their documents). The config always ends up with a chat template (Llama 2's when it had none),
 * which the SFT stage reads.
 */
export async function prepareTokenizer(opts: {
  outDir: string;
  given: string | null;
  vocabSize: number;
  minPairCount: number;
  corpusFiles: readonly string[];
  documents: readonly string[];
}): Promise<HfTokenizer> {
  mkdirSync(opts.outDir, { recursive: true });
  if (opts.given !== null) {
    copyTokenizerFiles(opts.given, opts.outDir, 'tokenizer.path');
  } else {
    const allText = opts.corpusFiles.every((f) => TEXT_EXTENSIONS.has(extname(f).toLowerCase()));
    const scratch = join(opts.outDir, '.corpus.txt');
    if (!allText) writeFileSync(scratch, opts.documents.join('\n\n'));
    try {
      await trainTokenizer({
        corpusFiles: allText ? [...opts.corpusFiles] : [scratch],
        vocabSize: opts.vocabSize,
        outDir: opts.outDir,
        minPairCount: opts.minPairCount,
      });
    } finally {
      rmSync(scratch, { force: true });
    }
  }
  ensureChatTemplate(join(opts.outDir, 'tokenizer_config.json'));
  return loadTokenizer(opts.outDir);
}

/** Copy tokenizer.json (required) and the other tokenizer files present from `from` to `to`. */
export function copyTokenizerFiles(from: string, to: string, key = 'tokenizer'): void {
  if (!existsSync(join(from, 'tokenizer.json'))) throw new UserError(`${key}: ${from}/tokenizer.json not found`);
  copyTokenizerFolderFiles(from, to);
}

function ensureChatTemplate(path: string): void {
  const config = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
  if (config.chat_template !== undefined) return;
  writeFileSync(path, JSON.stringify({ ...config, chat_template: LLAMA2_CHAT_TEMPLATE }, null, 2) + '\n');
}
