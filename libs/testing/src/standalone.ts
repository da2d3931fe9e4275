import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repositoryRoot } from './root.js';

/**
 * The working tree (tracked and untracked files git does not ignore) copied into a fresh
 * directory with nothing beside it, as a user's clone is: no `../shared`. node_modules is
 * linked rather than installed again. Returns the copy's root.
 */
export function standaloneCopy(): string {
  const root = join(mkdtempSync(join(tmpdir(), 'lumen-clone-')), 'lumen');
  const files = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    { cwd: repositoryRoot },
  )
    .toString()
    .split('\0')
    .filter((file) => file !== '' && existsSync(join(repositoryRoot, file)));
  for (const file of files) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    copyFileSync(join(repositoryRoot, file), join(root, file));
  }
  symlinkSync(join(repositoryRoot, 'node_modules'), join(root, 'node_modules'));
  return root;
}
