export * from './ports.js';
export * from './planner.js';
export * from './scheduler.js';
export * from './prober.js';
export * from './reporter.js';
export * from './wiring.js';
