import { readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where the shared conformance scenarios live: `LUMEN_CONFORMANCE_DIR`, else
 * `../shared/conformance` beside the repository (the layout of the project's machines).
 */
export function conformanceDir(repositoryRoot: string, override?: string): string {
  const dir = override ?? resolve(repositoryRoot, '..', 'shared', 'conformance');
  if (!existsSync(dir)) {
    throw new Error(`conformance scenarios not found at ${dir}; set LUMEN_CONFORMANCE_DIR`);
  }
  return dir;
}

/** Every `*.yaml` below `dir`, sorted, as absolute paths. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.yaml'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
