export * from './convert.js';
export * from './watcher.js';
