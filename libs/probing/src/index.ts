export * from './execute.js';
export * from './host-ports.js';
