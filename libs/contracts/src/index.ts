export * from './common.js';
export * from './test-case/index.js';
export * from './probe-batch/index.js';
export * from './probe-result/index.js';
export * from './dead-letter/index.js';
export * from './prober-heartbeat/index.js';
export * from './reprobe-request/index.js';
export * from './case-unschedulable/index.js';
