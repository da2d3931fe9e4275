/** The prober stage: a node's probe batches in, observations out (nmap inside the pods). */
export * from './core.js';
export * from './ports.js';
export * from './settings.js';
export * from './execute.js';
export * from './host-ports.js';
export * from './netns.js';
export * from './nmap/arguments.js';
export * from './nmap/parse.js';
export * from './nmap/observe.js';
export * from './target-scope.js';
