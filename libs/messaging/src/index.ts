export * from './bus.js';
export * from './nats-server.js';
export * from './streams.js';
export * from './prober-registry.js';
export * from './dispatched-batches.js';
export * from './permissions.js';
export * from './auth-callout.js';
