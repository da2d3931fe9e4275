export * from './arguments.js';
export * from './parse.js';
export * from './observe.js';
