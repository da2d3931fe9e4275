import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout the tests run from. */
export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
