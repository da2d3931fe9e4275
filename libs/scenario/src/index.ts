export * from './errors.js';
export * from './load.js';
export * from './conformance.js';
export * from './services.js';
