export * from './run.js';
export * from './kernel.js';
export * from './ports.js';
