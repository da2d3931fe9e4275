/** The planner stage: cluster views in, cases and the policy inventory out. */
export * from './core.js';
export * from './ports.js';
export * from './settings.js';
export * from './plan.js';
export * from './case-id.js';
export * from './publish.js';
export * from './synthetic.js';
export * from './coverage.js';
export * from './inventory.js';
export * from './plan-runner.js';
export * from './subscribe.js';
export * from './service-paths.js';
export * from './family-cases.js';
