/** The pipeline: stages in order from one YAML, each output wired into the next input. */
export { pipelineConfigSchema, PIPELINE_STAGES, type PipelineConfig, type PipelineStage } from './config.js';
export {
  runPipeline,
  parseForce,
  resolveStageConfig,
  judgedModels,
  type PipelineRunOptions,
  type PipelineResult,
  type StageDefinitions,
  type StageRunner,
  type StageRunContext,
  type FinalEvaluation,
  type FinalEvaluationInput,
} from './runner.js';
export { stageModel, wiringOverrides, mappingToOverrides, resolvePackagePath, type ModelRef } from './wiring.js';
export { configHash, readPipelineState, PIPELINE_STATE_FILE } from './state.js';
