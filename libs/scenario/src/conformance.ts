import { readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The shared conformance scenarios: `../shared/conformance` beside the repository, as on the project's machines and in CI. */
export function conformanceDir(repositoryRoot: string): string {
  const dir = resolve(repositoryRoot, '..', 'shared', 'conformance');
  if (!existsSync(dir)) {
    throw new Error(
      `conformance scenarios not found at ${dir}: shared/ must sit beside the repository`,
    );
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
