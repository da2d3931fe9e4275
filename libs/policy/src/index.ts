export * from './types.js';
export * from './verdict.js';
export * from './ip.js';
export * from './labels.js';
export * from './validate.js';
export * from './tiers.js';
export { Bitset } from './bitset.js';
export { PolicyEngine, type PodClass, type ModelChange } from './engine.js';
export { ReferenceEvaluator } from './reference.js';
