import { Rng } from '../engine/rng.js';

/**
 * Seeded train/eval split: the same seed and items always give the same split. Both parts keep
 * the items' original order (shuffling for training is the cursor's job).
 */
export function trainEvalSplit<T>(
  items: readonly T[],
  opts: { seed: number; evalFraction?: number; evalSize?: number },
): { train: T[]; eval: T[] } {
  const n = items.length;
  const evalSize = opts.evalSize ?? Math.round(n * (opts.evalFraction ?? 0));
  if (!Number.isInteger(evalSize) || evalSize < 0 || evalSize > n) {
    throw new RangeError(`trainEvalSplit: eval size ${evalSize} is not in [0, ${n}]`);
  }
  const order = new Rng(opts.seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const isEval = new Uint8Array(n);
  for (let i = 0; i < evalSize; i++) isEval[order[i]!] = 1;
  const train: T[] = [];
  const evalItems: T[] = [];
  items.forEach((item, i) => (isEval[i] ? evalItems : train).push(item));
  return { train, eval: evalItems };
}
