/** Stage-independent training building blocks; recipes compose them. */
export { AdamW, decaysByDefault, type AdamWOptions } from './adamw.js';
export { lrMultiplier, learningRateAt, type ScheduleKind, type ScheduleOptions } from './schedule.js';
export { globalNorm, clipCoefficient, clipGradNormInPlace } from './clip.js';
export { IGNORE_INDEX, shiftLabels, countTargets, maskedCrossEntropySum, maskedCrossEntropyMean } from './loss.js';
export { GradientAccumulator, microBatchGrads, accumulateGradients, disposeGrads } from './accumulation.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  listCheckpoints,
  findLatestCheckpoint,
  CHECKPOINTS_DIR,
  OPTIMIZER_FILE,
  TRAINER_STATE_FILE,
  type TrainerState,
  type CheckpointContents,
  type CheckpointInfo,
} from './checkpoint.js';
export { NonFiniteGuard } from './nan-guard.js';
export { StopSignal, SIGNAL_EXIT_CODES, type StopSignalName } from './stop-signal.js';
