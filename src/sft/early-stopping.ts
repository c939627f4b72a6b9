/** Early stopping is a loop policy of the shared harness (src/training/early-stopping.ts). */
export { updateEarlyStopping, type EarlyStoppingState } from '../training/early-stopping.js';
