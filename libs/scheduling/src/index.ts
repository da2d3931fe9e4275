export * from './assign.js';
export * from './rate-limit.js';
