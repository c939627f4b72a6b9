/**
 * Advantage estimation for PPO over response tokens, on plain arrays.
 *
 * Everything here runs on rollout data that needs no gradient (as TRL computes it under
 * `torch.no_grad()`), so it works on `number[][]` — rows are sequences, columns response positions
 * ([batch, T]) — in float64, with a 0/1 mask marking real response tokens (1) and padding (0).
 */

/** [batch, T] numbers, one row per sequence. */
export type Rows = number[][];

function check(name: string, a: Rows, b: Rows): void {
  if (a.length !== b.length || a.some((row, i) => row.length !== b[i]!.length)) {
    throw new Error(`${name}: shapes differ (${a.length} rows vs ${b.length})`);
  }
}

/** Σ values·mask / Σ mask — the mean over real tokens only. Throws on an empty mask. */
export function maskedMean(values: Rows, mask: Rows): number {
  check('maskedMean', values, mask);
  let sum = 0;
  let count = 0;
  values.forEach((row, i) => row.forEach((v, t) => {
    const m = mask[i]![t]!;
    if (m !== 0) { sum += v * m; count += m; }
  }));
  if (count === 0) throw new Error('maskedMean: the mask selects no element');
  return sum / count;
}

/**
 * Variance over real tokens. `unbiased` (default, as TRL's `masked_var`) applies Bessel's
 * correction n/(n−1), so one token alone has no variance estimate and throws.
 */
export function maskedVar(values: Rows, mask: Rows, unbiased = true): number {
  const mean = maskedMean(values, mask);
  const centered = values.map((row) => row.map((v) => (v - mean) ** 2));
  const variance = maskedMean(centered, mask);
  if (!unbiased) return variance;
  const n = mask.reduce((s, row) => s + row.reduce((a, m) => a + m, 0), 0);
  if (n <= 1) throw new Error('maskedVar: the unbiased variance needs at least 2 masked elements');
  return variance * (n / (n - 1));
}

/**
 * Whitening as TRL's `masked_whiten`: (x − mean) / sqrt(var + 1e-8) with mean and unbiased variance
 * over the mask. `shiftMean: false` adds the mean back (rewards keep their level, only the scale is
 * normalised). Padding positions are transformed too; callers zero them with the mask.
 */
export function whiten(values: Rows, mask: Rows, opts: { shiftMean?: boolean } = {}): Rows {
  const mean = maskedMean(values, mask);
  const invStd = 1 / Math.sqrt(maskedVar(values, mask) + 1e-8);
  const shift = opts.shiftMean ?? true;
  return values.map((row) => row.map((v) => (v - mean) * invStd + (shift ? 0 : mean)));
}

/** values ⊙ mask: zero at padding. */
export function applyMask(values: Rows, mask: Rows): Rows {
  check('applyMask', values, mask);
  return values.map((row, i) => row.map((v, t) => (mask[i]![t]! !== 0 ? v : 0)));
}

export interface GaeResult {
  /** Raw (unwhitened) GAE advantages, 0 at padding. [batch, T] */
  advantages: Rows;
  /** advantages + values: the critic's regression target, 0 at padding. [batch, T] */
  returns: Rows;
}

/**
 * Generalised advantage estimation (Schulman et al. 2016), right to left over each row:
 *   δ_t = r_t + γ·V_{t+1} − V_t ,  A_t = δ_t + γλ·A_{t+1}
 * where V and A beyond the last real token are 0 (the episode ends with the response).
 * The mask must be a prefix of ones per row (a response then its right padding).
 */
export function gae(rewards: Rows, values: Rows, mask: Rows, gamma: number, lambda: number): GaeResult {
  check('gae(rewards, values)', rewards, values);
  check('gae(rewards, mask)', rewards, mask);
  const advantages: Rows = [];
  const returns: Rows = [];
  rewards.forEach((r, i) => {
    const v = values[i]!;
    const m = mask[i]!;
    const T = r.length;
    const adv = new Array<number>(T).fill(0);
    let next = 0; // A_{t+1}
    for (let t = T - 1; t >= 0; t--) {
      if (m[t] === 0) { next = 0; continue; }
      const nextValue = t + 1 < T && m[t + 1] !== 0 ? v[t + 1]! : 0;
      const delta = r[t]! + gamma * nextValue - v[t]!;
      next = delta + gamma * lambda * next;
      adv[t] = next;
    }
    advantages.push(adv);
    returns.push(adv.map((a, t) => (m[t] !== 0 ? a + v[t]! : 0)));
  });
  return { advantages, returns };
}

/** Advantages ready for the policy loss: whitened over the mask (mean 0, var 1), 0 at padding. */
export function whitenAdvantages(advantages: Rows, mask: Rows): Rows {
  return applyMask(whiten(advantages, mask), mask);
}

/**
 * Explained variance 1 − Var(target − pred) / Var(target) over the mask (1 = a perfect critic,
 * 0 = no better than a constant, < 0 worse). NaN when the target has no variance.
 */
export function explainedVariance(pred: Rows, target: Rows, mask: Rows): number {
  check('explainedVariance', pred, target);
  const varTarget = maskedVar(target, mask, false);
  if (varTarget === 0) return Number.NaN;
  const residual = target.map((row, i) => row.map((y, t) => y - pred[i]![t]!));
  return 1 - maskedVar(residual, mask, false) / varTarget;
}
