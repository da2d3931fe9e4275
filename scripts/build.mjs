#!/usr/bin/env node
// Compiles the TypeScript sources to dist/ with swc, one file at a time and only the
// files whose source is newer than their output. Type checking is `npm run check`'s job;
// this keeps `npx lumen`, the services and the benchmarks runnable without a manual step.
import { readFileSync, readdirSync, statSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFileSync } from '@swc/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceRoots = ['libs', 'services', 'cli', 'bench'];
const swcOptions = { ...JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8')), swcrc: false };

function* typeScriptFiles(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      // ui/ is the dashboard's browser code: Vite bundles it (buildDashboard).
      if (entry.name !== 'node_modules' && entry.name !== 'test' && entry.name !== 'ui')
        yield* typeScriptFiles(path);
    } else if (
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.d.ts') &&
      !entry.name.endsWith('.spec.ts')
    ) {
      yield path;
    }
  }
}

export function build({ quiet = false } = {}) {
  let compiled = 0;
  for (const sourceRoot of sourceRoots) {
    for (const source of typeScriptFiles(join(root, sourceRoot))) {
      const output = join(root, 'dist', relative(root, source)).replace(/\.ts$/, '.js');
      if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) continue;
      const { code, map } = transformFileSync(source, {
        ...swcOptions,
        filename: source,
        sourceFileName: relative(dirname(output), source),
      });
      mkdirSync(dirname(output), { recursive: true });
      writeFileSync(output, `${code}\n//# sourceMappingURL=${output.split('/').pop()}.map\n`);
      if (map) writeFileSync(`${output}.map`, map);
      compiled += 1;
    }
  }
  if (!quiet && compiled > 0)
    process.stderr.write(`build: compiled ${compiled} file(s) into dist/\n`);
  return compiled;
}

const dashboardSource = join(root, 'services', 'reporter', 'ui');
const dashboardOutput = join(root, 'dist', 'ui', 'index.html');

function newestUnder(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The dashboard (services/reporter/ui) bundled by Vite into dist/ui, which the reporter
 * serves at /ui; only when a source file is newer than the last bundle.
 */
export async function buildDashboard({ quiet = false } = {}) {
  const lockfile = join(root, 'package-lock.json');
  if (
    existsSync(dashboardOutput) &&
    statSync(dashboardOutput).mtimeMs >=
      Math.max(newestUnder(dashboardSource), statSync(lockfile).mtimeMs)
  )
    return false;
  const { build: viteBuild } = await import('vite');
  await viteBuild({ configFile: join(dashboardSource, 'vite.config.ts') });
  if (!quiet) process.stderr.write('build: bundled the dashboard into dist/ui/\n');
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build();
  await buildDashboard();
}
