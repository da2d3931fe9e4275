import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from './root.js';

/**
 * One of Lumen's services as its own process, from the build in dist/, as the image runs
 * it: with `env` and the PATH only, its JSON logs appended to `logFile` for when a test
 * fails.
 */
export function spawnService(
  service: 'planner' | 'scheduler' | 'prober' | 'reporter',
  env: Record<string, string>,
  logFile: string,
): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repositoryRoot, 'dist', 'services', service, 'src', 'main.js')],
    { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  return child;
}
