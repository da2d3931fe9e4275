// Puts nats-server 2.10 beside the repository, in .lumen/tools, when it is not there yet.
//
// Why: the prober's per-node credentials come from NATS auth callout (ADR 0016), which needs
// nats-server 2.10 or later, the version the Helm chart runs. Debian 12 ships 2.9.10; Debian
// 13 (trixie) ships 2.10.27. This takes trixie's package from Debian's archive, checks its
// SHA-256 against the one pinned here (from trixie's signed Packages index), and extracts the
// one static binary. Nothing is installed system-wide.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '2.10.27';
const PACKAGE = `nats-server_${VERSION}-1+b2_amd64.deb`;
const URL = `http://deb.debian.org/debian/pool/main/n/nats-server/${PACKAGE}`;
const SHA256 = '6d913ac987b78734c08537c2adeb1526cf735f216173a9170d94b185fcfe6f8a';

const repository = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(repository, '.lumen', 'tools', `nats-server-${VERSION}`, 'nats-server');
if (existsSync(target)) process.exit(0);
if (process.arch !== 'x64') {
  console.error(`fetch-nats-server: only amd64 is pinned; put nats-server >= 2.10 at ${target}`);
  process.exit(1);
}

console.error(`bootstrap: fetching nats-server ${VERSION} from Debian trixie`);
const response = await fetch(URL);
if (!response.ok) {
  console.error(`fetch-nats-server: ${URL}: HTTP ${response.status}`);
  process.exit(1);
}
const body = Buffer.from(await response.arrayBuffer());
const digest = createHash('sha256').update(body).digest('hex');
if (digest !== SHA256) {
  console.error(`fetch-nats-server: ${PACKAGE} has SHA-256 ${digest}, expected ${SHA256}`);
  process.exit(1);
}
const scratch = mkdtempSync(join(tmpdir(), 'lumen-nats-server-'));
try {
  writeFileSync(join(scratch, PACKAGE), body);
  execFileSync('dpkg-deb', ['-x', join(scratch, PACKAGE), join(scratch, 'root')]);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(scratch, 'root', 'usr', 'sbin', 'nats-server'), `${target}.partial`);
  chmodSync(`${target}.partial`, 0o755);
  const version = execFileSync(`${target}.partial`, ['--version']).toString().trim();
  if (!version.includes(`v${VERSION}`)) throw new Error(`unexpected version: ${version}`);
  execFileSync('mv', [`${target}.partial`, target]);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
