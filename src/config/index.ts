/** Config loading, overrides, interpolation, validation and docs — see README "Configs". */
export { loadConfig, resolveConfig, type ResolvedConfig, type ExpectedStage } from './load.js';
export { readYamlSource, parseYamlSource, type YamlSource } from './yaml-source.js';
export { applyOverrides, parseOverride, parseOverrideValue, type Override } from './overrides.js';
export { interpolate, type KeyProblem } from './interpolate.js';
export { fillDefaults } from './defaults.js';
export { ConfigError, formatProblem, type ConfigProblem, type ConfigLocation } from './problems.js';
export { registerStageSchema, stageSchema, registeredStages, lenientSections } from './registry.js';
export {
  commonSections,
  runSection,
  outputDirField,
  engineSection,
  trackingSection,
  checkpointSection,
  optimSection,
  scheduleSection,
  trainSection,
} from './sections.js';
export { writeResolvedConfig, resolvedConfigYaml, writeFileAtomic } from './write.js';
export { schemaMarkdownTable, schemaHelpText, schemaKeyDocs, replaceGeneratedBlock, type KeyDoc } from './docs.js';
export { peel, schemaAt, schemaKeys, typeLabel } from './schema-walk.js';
export { closestMatch, editDistance } from './suggest.js';
export { listShippedConfigs, findConfig, headerSummary, shippedConfigsRoot, type ShippedConfig } from './shipped.js';
