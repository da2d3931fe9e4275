export * from './run.js';
export * from './kernel.js';
