/**
 * Which prompts each rollout draws: every epoch a fresh permutation from a seed, walked in order,
 * so the position is two integers (`PromptCursor`) that a checkpoint stores and a resume continues.
 */
import { Rng } from '../engine/rng.js';

export interface PromptCursor {
  epoch: number;
  index: number;
}

/** The permutation of `n` prompts used in `epoch` (a pure function of seed and epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  return new Rng((seed + Math.imul(epoch, 0x9e3779b1)) >>> 0).shuffle(Array.from({ length: n }, (_, i) => i));
}

/** The next `count` prompt indices from `cursor` (crossing into the next epoch as needed). */
export function nextPrompts(n: number, count: number, seed: number, cursor: PromptCursor): { indices: number[]; cursor: PromptCursor } {
  if (n === 0) throw new Error('nextPrompts: no prompts');
  const indices: number[] = [];
  let { epoch, index } = cursor;
  let order = epochOrder(n, seed, epoch);
  while (indices.length < count) {
    if (index >= n) {
      epoch++;
      index = 0;
      order = epochOrder(n, seed, epoch);
    }
    indices.push(order[index]!);
    index++;
  }
  return { indices, cursor: { epoch, index } };
}
