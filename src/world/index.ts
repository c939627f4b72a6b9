/** The bundled assistant world: generator, gold judge, instruction checkers, evaluation. */
export { judge, combine, conciseness, extractClaims, type Judgement, type JudgeParts, type PromptMessage } from './judge.js';
export { check, CHECKER_IDS, worldCheckers } from './checkers.js';
export {
  INSTRUCTIONS,
  INSTRUCTION_FAMILIES,
  applyInstructions,
  worldRepair,
  instructionById,
  instructionText,
  type Instruction,
  type InstructionFamily,
} from './instructions.js';
export {
  generateWorld,
  writeWorld,
  renderLlama2,
  sampleInstructionIds,
  strengthForGap,
  STRENGTH_THRESHOLDS,
  WORLD_SIZES,
  type ChatMessage,
  type Strength,
  type WorldOptions,
} from './generate.js';
export { judgeResponses, evaluateWithGenerator, readPromptsFile, formatWorldScore, type WorldScore, type FamilyScore } from './evaluate.js';
export { FAMILIES, parsePrompt, goldAnswer, answerSentence, sampleTask, renderPrompt, type Family, type Task } from './tasks.js';
export { makeResponse, RESPONSE_KINDS, type ResponseKind } from './responses.js';
export { toZib, fromZib } from './zib.js';
export {
  judgeSafety,
  promptCategory,
  isRefusal,
  harmStepCount,
  safetyLabel,
  HARMFUL_FAMILIES,
  BORDERLINE_FRAMES,
  type SafetyJudgement,
  type SafetyLabel,
  type PromptCategory,
} from './safety.js';
export { judgeSafetyResponses, type SafetyScore } from './safety-eval.js';
