export * from './convert.js';
export * from './watcher.js';
export * from './synthetic-pods.js';
export * from './prober-daemonset.js';
export * from './lease-elector.js';
export * from './node-watcher.js';
export * from './source-check.js';
export * from './prober-identity.js';
