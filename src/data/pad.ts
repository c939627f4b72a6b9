/** Padding id sequences into one rectangle, with the attention mask that marks the real tokens. */

/** Which end gets the padding: right for training and scoring, left for generation. */
export type PaddingSide = 'left' | 'right';

/**
 * Pad `seqs` to one length T (the longest, at least `length`, rounded up to `padToMultipleOf`):
 * ids [N, T] with `padId` in the padding, mask [N, T] with 1 on real tokens.
 */
export function padSequences(
  seqs: readonly (readonly number[])[],
  opts: { padId: number; side: PaddingSide; length?: number; padToMultipleOf?: number },
): { ids: number[][]; mask: number[][] } {
  const longest = Math.max(0, opts.length ?? 0, ...seqs.map((s) => s.length));
  const multiple = opts.padToMultipleOf ?? 1;
  const t = Math.ceil(longest / multiple) * multiple;
  const ids: number[][] = [];
  const mask: number[][] = [];
  for (const s of seqs) {
    const padIds = new Array<number>(t - s.length).fill(opts.padId);
    const zeros = new Array<number>(t - s.length).fill(0);
    const ones = new Array<number>(s.length).fill(1);
    ids.push(opts.side === 'right' ? [...s, ...padIds] : [...padIds, ...s]);
    mask.push(opts.side === 'right' ? [...ones, ...zeros] : [...zeros, ...ones]);
  }
  return { ids, mask };
}
