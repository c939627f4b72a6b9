/**
 * Early stopping on the eval loss (HF's EarlyStoppingCallback): an evaluation improves when it beats
 * the best so far by more than `minDelta`; `patience` evaluations in a row without improvement stop.
 */
export interface EarlyStoppingState {
  best: number | null;
  /** Evaluations in a row without improvement. */
  bad: number;
}

export function updateEarlyStopping(
  state: EarlyStoppingState,
  evalLoss: number,
  opts: { patience: number | null; minDelta: number },
): { state: EarlyStoppingState; stop: boolean } {
  const improved = Number.isFinite(evalLoss) && (state.best === null || evalLoss < state.best - opts.minDelta);
  const next: EarlyStoppingState = improved ? { best: evalLoss, bad: 0 } : { best: state.best, bad: state.bad + 1 };
  return { state: next, stop: opts.patience !== null && next.bad >= opts.patience };
}
