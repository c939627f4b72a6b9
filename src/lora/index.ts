/** LoRA: adapters on linear projections, merge/unmerge, PEFT adapter folders. */
export { LoraLinear, loraScaling, kaimingUniformBound, type LoraLinearOptions } from './lora-linear.js';
export {
  LORA_TARGET_NAMES,
  ALL_LINEAR,
  resolveTargetModules,
  injectLora,
  loraSettings,
  loraAdapters,
  trainableVariables,
  mergeLora,
  unmergeLora,
  unloadLora,
  withAdaptersDisabled,
  type LoraHost,
  type LoraSettings,
  type InjectLoraOptions,
} from './inject.js';
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  PEFT_PREFIX,
  adapterStateDict,
  adapterConfig,
  saveAdapter,
  readAdapterConfig,
  loadAdapterWeights,
  loadAdapter,
  numLoraParameters,
  type AdapterConfig,
  type PeftTaskType,
} from './peft-io.js';
