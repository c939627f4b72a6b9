/**
 * Per-token KL estimators between the policy π and the frozen reference π_ref, and the controllers
 * that set the KL coefficient β.
 */
import type { Rows } from './advantages.js';

export const KL_ESTIMATORS = ['k1', 'k3', 'abs', 'mse'] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];

/**
 * One token's KL estimate from log π(a) and log π_ref(a), a sampled from π (Schulman, "Approximating
 * KL divergence"; names as TRL/OpenRLHF use them):
 *   k1  = log π − log π_ref                     unbiased, can be negative per token
 *   k3  = (r − 1) − log r,  r = π_ref / π        unbiased and ≥ 0
 *   abs = |log π − log π_ref|                    TRL's `abs`
 *   mse = ½ (log π − log π_ref)²                 TRL's `mse` (OpenRLHF's k2)
 */
export function klToken(logp: number, refLogp: number, estimator: KlEstimator): number {
  const diff = logp - refLogp;
  switch (estimator) {
    case 'k1': return diff;
    case 'k3': { const logr = -diff; return Math.expm1(logr) - logr; }
    case 'abs': return Math.abs(diff);
    case 'mse': return 0.5 * diff * diff;
  }
}

/** Per-token KL over [batch, T]; 0 at padding. */
export function klPerToken(logprobs: Rows, refLogprobs: Rows, mask: Rows, estimator: KlEstimator): Rows {
  return logprobs.map((row, i) =>
    row.map((lp, t) => (mask[i]![t]! !== 0 ? klToken(lp, refLogprobs[i]![t]!, estimator) : 0)));
}

/** Serializable controller state, stored in `trainer_state.json` so a resumed run continues β exactly. */
export type KlControllerState =
  | { kind: 'fixed'; value: number }
  | { kind: 'adaptive'; value: number; target: number; horizon: number };

export interface KlController {
  /** The current coefficient β. */
  readonly value: number;
  /** Feed the KL measured on the last rollout (summed over tokens, mean over sequences) and its batch size. */
  update(currentKl: number, nSteps: number): void;
  exportState(): KlControllerState;
}

/**
 * One step of the adaptive controller of Ziegler et al. (2019):
 *   e = clip(KL / target − 1, −0.2, 0.2);  β ← β · (1 + e · n_steps / horizon)
 */
export function adaptiveKlStep(value: number, currentKl: number, target: number, horizon: number, nSteps: number): number {
  const error = Math.min(0.2, Math.max(-0.2, currentKl / target - 1));
  return value * (1 + (error * nSteps) / horizon);
}

export class FixedKlController implements KlController {
  constructor(readonly value: number) {}
  update(_currentKl: number, _nSteps: number): void {}
  exportState(): KlControllerState { return { kind: 'fixed', value: this.value }; }
}

export class AdaptiveKlController implements KlController {
  private coef: number;
  constructor(initValue: number, readonly target: number, readonly horizon: number) {
    if (!(target > 0)) throw new Error(`AdaptiveKlController: target must be > 0, got ${target}`);
    if (!(horizon > 0)) throw new Error(`AdaptiveKlController: horizon must be > 0, got ${horizon}`);
    this.coef = initValue;
  }
  get value(): number { return this.coef; }
  update(currentKl: number, nSteps: number): void {
    this.coef = adaptiveKlStep(this.coef, currentKl, this.target, this.horizon, nSteps);
  }
  exportState(): KlControllerState {
    return { kind: 'adaptive', value: this.coef, target: this.target, horizon: this.horizon };
  }
}

/** Rebuild a controller from {@link KlController.exportState}'s output. */
export function klControllerFromState(state: KlControllerState): KlController {
  return state.kind === 'fixed'
    ? new FixedKlController(state.value)
    : new AdaptiveKlController(state.value, state.target, state.horizon);
}
