/** The scheduler stage: cases and re-probes in, probe batches per node out. */
export * from './core.js';
export * from './ports.js';
export * from './settings.js';
export * from './subscribe.js';
export * from './assign.js';
export * from './rate-limit.js';
