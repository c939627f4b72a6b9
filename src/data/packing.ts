import { IGNORE_INDEX, collateTrain, range, truncateExample, type Example, type TokenBatch, type Truncation } from './collate.js';

/**
 * Packing: several short examples share one row of `maxLength` tokens, without seeing each other.
 * Each example is a segment: its position ids restart at 0, its segment id (1, 2, ...) confines
 * attention to itself (block-diagonal causal mask, see mask.ts), and the label of its first token
 * is -100 so the previous segment's last logit is never trained to predict it. With those three,
 * every example's loss equals its loss in an unpacked batch.
 */

/** One packed row before padding: fields are `[seq]`, and `examples` lists its segments in order. */
export interface PackedRow {
  inputIds: number[];
  labels: number[];
  positionIds: number[];
  segmentIds: number[];
  /** Indices (into the packed example list) of the segments, segment k+1 = examples[k]. */
  examples: number[];
}

/**
 * Best-fit-decreasing bin packing: items longest first, each into the open bin with the least room
 * that still fits it, else a new bin. Returns bins as lists of item indices. Deterministic: ties in
 * length keep input order; ties in room pick the bin that reached that room last.
 */
export function bestFitDecreasing(lengths: readonly number[], capacity: number): number[][] {
  const order = range(lengths.length).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const bins: number[][] = [];
  const room: number[] = [];
  // binsWithRoom[r] = ids of bins with exactly r free slots, so the best fit is the first
  // non-empty bucket at r >= length (O(capacity) per item, no sorting of bins).
  const binsWithRoom: number[][] = Array.from({ length: capacity + 1 }, () => []);
  for (const item of order) {
    const len = lengths[item]!;
    if (len > capacity) throw new Error(`bestFitDecreasing: item ${item} has length ${len} > capacity ${capacity}`);
    let bin = -1;
    for (let r = len; r <= capacity && bin < 0; r++) {
      const bucket = binsWithRoom[r]!;
      if (bucket.length) bin = bucket.pop()!;
    }
    if (bin < 0) {
      bin = bins.length;
      bins.push([]);
      room.push(capacity);
    }
    bins[bin]!.push(item);
    room[bin] = room[bin]! - len;
    binsWithRoom[room[bin]!]!.push(bin);
  }
  return bins;
}

/** Pack examples (truncated to maxLength first) into rows of at most maxLength tokens. */
export function packExamples(examples: readonly Example[], opts: { maxLength: number; truncation?: Truncation }): PackedRow[] {
  const cut = examples.map((ex) =>
    ex.inputIds.length > opts.maxLength ? truncateExample(ex, opts.maxLength, opts.truncation ?? 'keep_start') : ex,
  );
  const bins = bestFitDecreasing(cut.map((ex) => ex.inputIds.length), opts.maxLength);
  return bins.map((bin) => {
    // Preallocated and filled by index: spreading millions of ids into growing arrays is ~10x slower.
    const length = bin.reduce((n, i) => n + cut[i]!.inputIds.length, 0);
    const row: PackedRow = {
      inputIds: new Array<number>(length),
      labels: new Array<number>(length),
      positionIds: new Array<number>(length),
      segmentIds: new Array<number>(length),
      examples: bin,
    };
    let t = 0;
    bin.forEach((exampleIndex, k) => {
      const ex = cut[exampleIndex]!;
      if (ex.labels.length !== ex.inputIds.length) {
        throw new Error(`packExamples: example ${exampleIndex} has ${ex.inputIds.length} inputIds but ${ex.labels.length} labels`);
      }
      for (let p = 0; p < ex.inputIds.length; p++, t++) {
        row.inputIds[t] = ex.inputIds[p]!;
        row.labels[t] = p === 0 ? IGNORE_INDEX : ex.labels[p]!;
        row.positionIds[t] = p;
        row.segmentIds[t] = k + 1;
      }
    });
    return row;
  });
}

/** Right-pad packed rows into a batch (pads: padId, label -100, position 0, segment 0). */
export function collatePacked(rows: readonly PackedRow[], opts: { padId: number; padToLength?: number }): TokenBatch {
  const batch = collateTrain(rows, { padId: opts.padId, minLength: opts.padToLength });
  rows.forEach((r, b) => {
    batch.positionIds[b]!.splice(0, r.positionIds.length, ...r.positionIds);
    batch.segmentIds[b]!.splice(0, r.segmentIds.length, ...r.segmentIds);
  });
  return batch;
}
