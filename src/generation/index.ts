export * from './generate.js';
export * from './sampling.js';
