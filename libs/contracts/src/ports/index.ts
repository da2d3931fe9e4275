export * from './bus.js';
export * from './runtime.js';
