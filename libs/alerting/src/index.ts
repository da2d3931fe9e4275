export * from './alert.js';
export * from './receivers.js';
export * from './signing.js';
export * from './render.js';
export * from './alerting.js';
export * from './dispatcher.js';
