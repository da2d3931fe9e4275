export * from './case-id.js';
export * from './plan.js';
export * from './publish.js';
export * from './synthetic.js';
export * from './coverage.js';
export * from './inventory.js';
