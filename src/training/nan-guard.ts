import { UserError } from '../errors.js';

/**
 * Skips updates whose loss or gradient norm is not finite, and gives up after `maxConsecutive`
 * such steps in a row (a run that keeps diverging will not recover by itself). The abort happens
 * before any checkpoint is written, so the last good checkpoint stays intact.
 */
export class NonFiniteGuard {
  consecutiveSkips = 0;
  totalSkips = 0;

  constructor(readonly maxConsecutive: number) {
    if (!(maxConsecutive >= 1)) throw new Error(`NonFiniteGuard: maxConsecutive must be ≥ 1, got ${maxConsecutive}`);
  }

  /**
   * True when the update may be applied. False means "skip this update" (log it); throws a
   * UserError on the `maxConsecutive`-th non-finite step in a row.
   */
  check(step: number, loss: number, gradNorm: number): boolean {
    if (Number.isFinite(loss) && Number.isFinite(gradNorm)) {
      this.consecutiveSkips = 0;
      return true;
    }
    this.consecutiveSkips++;
    this.totalSkips++;
    if (this.consecutiveSkips >= this.maxConsecutive) {
      throw new UserError(
        `training diverged: ${this.consecutiveSkips} steps in a row had a non-finite loss or gradient ` +
          `(last at step ${step}: loss=${loss}, grad norm=${gradNorm}); updates were skipped and the last ` +
          `good checkpoint was left as it was. Try a lower learning rate, a smaller max grad norm, or more warmup.`,
      );
    }
    return false;
  }
}
