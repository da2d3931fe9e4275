export * from './logger.js';
export * from './config.js';
export * from './health.js';
export * from './nest-log.js';
export * from './common-config.js';
export * from './boot.js';
export * from './service-module.js';
export * from './metrics.js';
