// Before the lab tests: fail loudly unless this is root with the lab's tools, build the
// daemon, remove test labs an earlier run may have left, and note what the host has.
// Plain JavaScript: Jest loads global hooks outside its ESM pipeline.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../../../scripts/build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export default async function setup() {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the lab tests need root (network namespaces, nftables, cgroups); CI runs as root',
    );
  }
  build({ quiet: true });
  const { run } = await import(join(root, 'dist/libs/host/src/index.js'));
  const { TEST_LAB_ROOT, labFootprint } = await import(
    join(root, 'dist/libs/testing/src/lab-hygiene.js')
  );
  const tools = [
    ['ip', '-V'],
    ['nft', '--version'],
    ['nsenter', '--version'],
    ['nmap', '--version'],
    ['openssl', 'version'],
  ];
  for (const [tool, argument] of tools) {
    const result = await run(tool, [argument]).catch(() => undefined);
    if (!result) throw new Error(`the lab tests need ${tool}; run npm run bootstrap`);
  }
  if (existsSync(TEST_LAB_ROOT)) {
    for (const name of readdirSync(TEST_LAB_ROOT)) {
      await run(process.execPath, [join(root, 'bin/lumen.mjs'), 'lab', 'down', '--name', name], {
        env: { LUMEN_LAB_ROOT: TEST_LAB_ROOT },
      });
    }
  }
  globalThis.labFootprintBefore = labFootprint();
}
