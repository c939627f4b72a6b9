import { updateEarlyStopping, type EarlyStoppingState } from '../../src/sft/early-stopping.js';

test('early stopping: improvements must beat the best by more than min_delta; patience bad evals stop', () => {
  const opts = { patience: 2, minDelta: 0.1 };
  let state: EarlyStoppingState = { best: null, bad: 0 };
  const stops: boolean[] = [];
  for (const loss of [3.0, 2.5, 2.45, 2.2, 2.3, 2.15]) {
    const r = updateEarlyStopping(state, loss, opts);
    state = r.state;
    stops.push(r.stop);
  }
  // 3.0 best; 2.5 improves; 2.45 not by > 0.1 (bad 1); 2.2 improves; 2.3 bad 1; 2.15 bad 2 → stop.
  expect(stops).toEqual([false, false, false, false, false, true]);
  expect(state).toEqual({ best: 2.2, bad: 2 });
});

test('early stopping: off with patience null; a NaN eval never counts as an improvement', () => {
  const r = updateEarlyStopping({ best: 1, bad: 5 }, NaN, { patience: null, minDelta: 0 });
  expect(r).toEqual({ state: { best: 1, bad: 6 }, stop: false });
});
