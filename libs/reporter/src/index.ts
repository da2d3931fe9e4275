/** The reporter stage: cases and observations in; verdicts, re-probes and the results API out. */
export * from './core.js';
export * from './ports.js';
export * from './settings.js';
export * from './decide.js';
export * from './subscribe.js';
export * from './api/results-api.js';
export * from './api/openapi.js';
export * from './deny-behaviour.js';
export * from './retention.js';
export * from './case-turns.js';
export * from './result-gate.js';
export * from './store-outage.js';
export * from './service-verdict.js';
