import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Lumen checkout this code runs from (from src/ under Jest, or from dist/). */
export function lumenRepository(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'lumen'
    )
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('not inside the Lumen repository');
    dir = parent;
  }
}
