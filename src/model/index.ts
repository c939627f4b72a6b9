export * from './config.js';
export * from './adapter.js';
export * from './kvcache.js';
export * from './heads.js';
export * from './llama.js';
export * from './names.js';
export * from './describe.js';
export { loadHfModel, loadHfConfig, saveHfModel, type SaveOptions } from './io/hf.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './io/safetensors.js';
