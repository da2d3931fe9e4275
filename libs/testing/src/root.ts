import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const above = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The checkout the tests run from: from the sources, or from the build in dist/ (benchmarks). */
export const repositoryRoot = basename(above) === 'dist' ? dirname(above) : above;
