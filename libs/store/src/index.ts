export * from './entities.js';
export * from './data-source.js';
export * from './case-store.js';
