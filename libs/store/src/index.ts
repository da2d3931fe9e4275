export * from './entities.js';
export * from './data-source.js';
export * from './case-store.js';
export * from './alert-outbox.js';
export * from './results-query.js';
export * from './retention.js';
export * from './outage.js';
