import { readdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The shared conformance scenarios: `../shared/conformance` beside the repository, as on
 * the project's machines and in CI. Only tests and benchmarks read them; what a user runs
 * (the demo, the README's examples) reads the repository's own `examples/`.
 */
export function conformanceDir(repositoryRoot: string): string {
  const dir = resolve(repositoryRoot, '..', 'shared', 'conformance');
  if (!existsSync(dir)) {
    throw new Error(
      `conformance scenarios not found at ${dir}: shared/ must sit beside the repository`,
    );
  }
  return dir;
}

/**
 * The repository's own scenarios: `examples/recipes` (NetworkPolicy), `examples/tiers`,
 * `examples/services` (connections through Services) and `examples/dual-stack`.
 */
export function exampleScenarioDirs(repositoryRoot: string): {
  recipes: string;
  tiers: string;
  services: string;
  dualStack: string;
} {
  const examples = resolve(repositoryRoot, 'examples');
  const dirs = {
    recipes: join(examples, 'recipes'),
    tiers: join(examples, 'tiers'),
    services: join(examples, 'services'),
    dualStack: join(examples, 'dual-stack'),
  };
  for (const dir of Object.values(dirs))
    if (!existsSync(dir)) throw new Error(`example scenarios not found at ${dir}`);
  return dirs;
}

/** Every `*.yaml` below `dir`, sorted, as absolute paths. */
export function scenarioFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.yaml'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
