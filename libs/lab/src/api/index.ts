export * from './errors.js';
export * from './resources.js';
export * from './selectors.js';
export * from './store.js';
export * from './server.js';
