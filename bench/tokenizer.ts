/**
 * Byte-level BPE training time (target: a 4k vocabulary on 10 MB in under a minute) and the
 * trained tokenizer's encode throughput, on a synthetic corpus with Zipf-distributed words.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { loadTokenizer, trainTokenizer } from '../src/tokenizer/index.js';
import type { Bench } from './harness.js';

/** Deterministic English-like text: Zipfian words from syllables, sentences, paragraphs, numbers. */
export function syntheticCorpus(bytes: number, seed = 1): string {
  const rng = new Rng(seed);
  const syllables = ['ka', 'lo', 'mi', 'ten', 'ra', 'ste', 'un', 'ver', 'so', 'pa', 'li', 'gor', 'é', 'th', 'an', 'qu', 'ing', 'er'];
  const words: string[] = [];
  for (let i = 0; i < 300000; i++) {
    let w = '';
    const n = 1 + rng.int(5);
    for (let s = 0; s < n; s++) w += syllables[rng.int(syllables.length)];
    words.push(w);
  }
  // Zipf: P(rank r) ∝ 1/r, sampled through the cumulative weights.
  const cumulative: number[] = [];
  let total = 0;
  for (let r = 1; r <= words.length; r++) cumulative.push((total += 1 / r));
  const pick = () => {
    const u = rng.uniform() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return words[lo]!;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const n = 4 + rng.int(14);
    const sentence: string[] = [];
    for (let i = 0; i < n; i++) sentence.push(rng.uniform() < 0.03 ? String(rng.int(10000)) : pick());
    const first = sentence[0]!;
    sentence[0] = first[0]!.toUpperCase() + first.slice(1);
    const text = sentence.join(' ') + (rng.uniform() < 0.1 ? '?' : '.') + (rng.uniform() < 0.15 ? '\n\n' : ' ');
    parts.push(text);
    length += text.length;
  }
  return parts.join('');
}

export const bench: Bench = {
  name: 'tokenizer',
  description: 'byte-level BPE trainer: 4k vocabulary on 10 MB; encode throughput',
  async run(ctx) {
    const megabytes = ctx.quick ? 1 : 10;
    const vocabSize = 4096;
    const dir = await mkdtemp(join(tmpdir(), 'rlhf-bench-tok-'));
    try {
      const corpus = syntheticCorpus(megabytes * 1e6);
      const corpusFile = join(dir, 'corpus.txt');
      await writeFile(corpusFile, corpus);
      const start = performance.now();
      const result = await trainTokenizer({ corpusFiles: [corpusFile], vocabSize, outDir: join(dir, 'tok') });
      const seconds = (performance.now() - start) / 1000;
      ctx.emit({
        name: `bpe train ${vocabSize} vocab, ${megabytes} MB`,
        metric: 'time',
        value: seconds,
        unit: 's',
        backend: 'js',
        vocab: result.vocabSize,
        unique_words: result.uniqueWords,
      });

      const tok = await loadTokenizer(join(dir, 'tok'));
      const sample = corpus.slice(0, 1e6);
      const t0 = performance.now();
      const ids = tok.encode(sample, { addSpecialTokens: false });
      const encodeSeconds = (performance.now() - t0) / 1000;
      ctx.emit({ name: 'encode 1 MB (trained 4k BPE)', metric: 'throughput', value: sample.length / 1e6 / encodeSeconds, unit: 'MB/s', backend: 'js', tokens: ids.length });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
