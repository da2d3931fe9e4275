export * from './logger.js';
export * from './config.js';
export * from './health.js';
export * from './nest-log.js';
