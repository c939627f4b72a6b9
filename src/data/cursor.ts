import { Rng } from '../engine/rng.js';

/** Where a run is in its data: saved in trainer_state.json so a resumed run sees the same batches. */
export interface CursorState {
  epoch: number;
  /** Position within this epoch's order of the next example to hand out. */
  index: number;
}

/**
 * Hands out batches of example indices, epoch after epoch, in a seeded order. Each epoch's order
 * depends only on (seed, epoch), so the state is two integers: no RNG state or order to save.
 */
export class DataCursor {
  readonly size: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Drop an epoch's final short batch (constant batch shape) instead of handing it out. */
  readonly dropLast: boolean;
  private epoch: number;
  private index: number;
  private order: number[];

  constructor(opts: { size: number; batchSize: number; seed: number; shuffle?: boolean; dropLast?: boolean; state?: CursorState }) {
    if (opts.size <= 0 || opts.batchSize <= 0) throw new RangeError(`DataCursor: size ${opts.size} and batchSize ${opts.batchSize} must be positive`);
    if (opts.dropLast && opts.batchSize > opts.size) {
      throw new RangeError(`DataCursor: batchSize ${opts.batchSize} > ${opts.size} examples with dropLast yields no batch`);
    }
    this.size = opts.size;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.epoch = opts.state?.epoch ?? 0;
    this.index = opts.state?.index ?? 0;
    this.order = this.epochOrder(this.epoch);
  }

  get state(): CursorState {
    return { epoch: this.epoch, index: this.index };
  }

  /** The order of example indices in `epoch`. */
  epochOrder(epoch: number): number[] {
    const order = Array.from({ length: this.size }, (_, i) => i);
    if (!this.shuffle) return order;
    // Mix the epoch into the seed (golden-ratio step; Rng's splitmix spreads it over the state).
    return new Rng((this.seed + Math.imul(epoch + 1, 0x9e3779b9)) >>> 0).shuffle(order);
  }

  /** The next batch of indices and the epoch it belongs to; advances the cursor. */
  next(): { indices: number[]; epoch: number } {
    const left = this.size - this.index;
    if (left <= 0 || (this.dropLast && left < this.batchSize)) {
      this.epoch++;
      this.index = 0;
      this.order = this.epochOrder(this.epoch);
    }
    const epoch = this.epoch;
    const indices = this.order.slice(this.index, this.index + this.batchSize);
    this.index += indices.length;
    return { indices, epoch };
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }
}
