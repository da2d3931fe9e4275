export * from './telemetry.js';
export * from './metrics.js';
export * from './stage-metrics.js';
