// After the lab tests, pass or fail: bring every test lab down, then demand that the host
// has no network namespace, cgroup or process more than before. A leak fails the run.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export default async function teardown() {
  const { run } = await import(join(root, 'dist/libs/host/src/index.js'));
  const { TEST_LAB_ROOT, labFootprint, leaks } = await import(
    join(root, 'dist/libs/testing/src/lab-hygiene.js')
  );
  const leftLabs = existsSync(TEST_LAB_ROOT) ? readdirSync(TEST_LAB_ROOT) : [];
  for (const name of leftLabs) {
    await run(process.execPath, [join(root, 'bin/lumen.mjs'), 'lab', 'down', '--name', name], {
      env: { LUMEN_LAB_ROOT: TEST_LAB_ROOT },
    });
  }
  const before = globalThis.labFootprintBefore;
  if (!before) return;
  const problems = [
    ...leaks(before, labFootprint()),
    ...leftLabs.map(
      (name) => `test lab "${name}" was still up after its tests (a test did not bring it down)`,
    ),
  ];
  if (problems.length > 0)
    throw new Error(`lab tests left things behind:\n  ${problems.join('\n  ')}`);
}
