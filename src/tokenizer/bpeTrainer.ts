import { BYTE_TO_CHAR, GPT2_SPLIT_PATTERN } from './byteLevel.js';

/**
 * A deterministic byte-level BPE trainer (GPT-2 style).
 *
 * It trains on unique pre-tokenized words with their counts, never on the raw stream: a pair's
 * count is the sum of `count(word) * occurrences in word`. After each merge only the words that
 * held the merged pair are rewritten, and only their pair counts change (incremental updates).
 * The best pair comes from a max-heap with lazy invalidation. Ties break on the smaller
 * (left id, right id), so the same corpus always yields the same merges, whatever the file order.
 */

export interface BpeTrainResult {
  /** Merged symbols in merge order: merges[i] joins two symbols into symbol 256 + i. */
  merges: Array<[string, string]>;
  /** Symbol id → byte-level string: the 256 byte symbols (in byte order), then one per merge. */
  symbols: string[];
}

/** Count the GPT-2 pre-tokens of `text` into `counts` (raw text keys; bytes come later). */
export function countPreTokens(text: string, counts: Map<string, number>): void {
  for (const match of text.matchAll(GPT2_SPLIT_PATTERN)) {
    const word = match[0];
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
}

// Pair (left, right) as one number: ids stay below 2^20, so the key stays below 2^40 (exact).
const PAIR_SHIFT = 1 << 20;
const pairKey = (left: number, right: number) => left * PAIR_SHIFT + right;
const pairLeft = (key: number) => Math.floor(key / PAIR_SHIFT);
const pairRight = (key: number) => key % PAIR_SHIFT;

/**
 * Learn merges until there are `numSymbols` symbols (256 bytes + merges) or no pair occurs at
 * least `minPairCount` times.
 */
export function trainByteLevelBpe(
  wordCounts: ReadonlyMap<string, number>,
  opts: { numSymbols: number; minPairCount?: number },
): BpeTrainResult {
  const minPairCount = opts.minPairCount ?? 2;
  if (opts.numSymbols < 256) throw new Error(`trainByteLevelBpe: numSymbols ${opts.numSymbols} < 256`);
  if (opts.numSymbols > PAIR_SHIFT) throw new Error(`trainByteLevelBpe: numSymbols ${opts.numSymbols} > ${PAIR_SHIFT}`);

  const symbols = BYTE_TO_CHAR.slice();
  const merges: Array<[string, string]> = [];

  // Unique words as symbol-id sequences, with their corpus counts.
  const utf8 = new TextEncoder();
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [word, count] of wordCounts) {
    const bytes = utf8.encode(word);
    if (bytes.length < 2) continue; // a single byte holds no pair
    words.push(Array.from(bytes));
    freqs.push(count);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>(); // pair → words that (may) hold it
  const addHolder = (key: number, word: number) => {
    let set = pairWords.get(key);
    if (!set) pairWords.set(key, (set = new Set()));
    set.add(word);
  };
  for (let w = 0; w < words.length; w++) {
    const seq = words[w]!;
    for (let i = 0; i + 1 < seq.length; i++) {
      const key = pairKey(seq[i]!, seq[i + 1]!);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + freqs[w]!);
      addHolder(key, w);
    }
  }

  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  while (symbols.length < opts.numSymbols) {
    const best = popBest(heap, pairCounts);
    if (best === undefined || best.count < minPairCount) break;
    const left = pairLeft(best.key);
    const right = pairRight(best.key);
    const merged = symbols.length;
    symbols.push(symbols[left]! + symbols[right]!);
    merges.push([symbols[left]!, symbols[right]!]);

    // Net change of each pair's count over this merge: pairs the merge did not touch cancel out.
    const deltas = new Map<number, number>();
    const holders = pairWords.get(best.key) ?? new Set<number>();
    pairWords.delete(best.key);
    for (const w of holders) {
      const seq = words[w]!;
      if (!containsPair(seq, left, right)) continue; // stale entry: an earlier merge took it
      const freq = freqs[w]!;
      for (let i = 0; i + 1 < seq.length; i++) {
        const key = pairKey(seq[i]!, seq[i + 1]!);
        deltas.set(key, (deltas.get(key) ?? 0) - freq);
      }
      const next = mergePair(seq, left, right, merged);
      words[w] = next;
      for (let i = 0; i + 1 < next.length; i++) {
        const key = pairKey(next[i]!, next[i + 1]!);
        deltas.set(key, (deltas.get(key) ?? 0) + freq);
        if (next[i] === merged || next[i + 1] === merged) addHolder(key, w);
      }
    }
    for (const [key, delta] of deltas) {
      if (delta === 0) continue;
      const count = (pairCounts.get(key) ?? 0) + delta;
      if (count > 0) pairCounts.set(key, count);
      else pairCounts.delete(key);
      // Counts that went up need a fresh heap entry; ones that went down are fixed when popped.
      if (delta > 0) heap.push(count, key);
    }
  }
  return { merges, symbols };
}

/** The highest-count pair whose heap entry is current (stale entries are re-pushed or dropped). */
function popBest(heap: PairHeap, pairCounts: Map<number, number>): { count: number; key: number } | undefined {
  while (heap.size > 0) {
    const top = heap.pop();
    const current = pairCounts.get(top.key) ?? 0;
    if (current === top.count) return top;
    if (current > 0 && current < top.count) heap.push(current, top.key);
  }
  return undefined;
}

function containsPair(seq: number[], left: number, right: number): boolean {
  for (let i = 0; i + 1 < seq.length; i++) if (seq[i] === left && seq[i + 1] === right) return true;
  return false;
}

/** Replace each non-overlapping (left, right), scanning left to right, with `merged`. */
export function mergePair(seq: readonly number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < seq.length; i++) {
    if (i + 1 < seq.length && seq[i] === left && seq[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(seq[i]!);
    }
  }
  return out;
}

/** Binary max-heap of (count, pair key): higher count first, then the smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.before(l, best)) best = l;
        if (r < this.counts.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const ca = this.counts[a]!;
    const cb = this.counts[b]!;
    return ca > cb || (ca === cb && this.keys[a]! < this.keys[b]!);
  }

  private swap(a: number, b: number): void {
    [this.counts[a], this.counts[b]] = [this.counts[b]!, this.counts[a]!];
    [this.keys[a], this.keys[b]] = [this.keys[b]!, this.keys[a]!];
  }
}
