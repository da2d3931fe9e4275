import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MessageBus,
  natsTls,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { freePort } from '#lumen/host';
import { eventually, repositoryRoot } from '#lumen/testing';

// Real nats-servers, one with TLS (a certificate for localhost and 127.0.0.1 signed by a
// CA made here) and one without; the client is Lumen's own bus, as every service uses it.
const dir = mkdtempSync(join(tmpdir(), 'lumen-nats-tls-'));
const file = (name: string): string => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA: `<name>.crt` and `<name>.key`. */
function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.crt`),
  );
}

/** A server certificate for localhost and 127.0.0.1, signed by the CA `ca`. */
function makeServerCert(ca: string): void {
  writeFileSync(file('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file(`${ca}.crt`),
    '-CAkey',
    file(`${ca}.key`),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
    '-out',
    file('server.crt'),
  );
}

let withTls: PrivateNatsServer;
let plaintext: PrivateNatsServer;
const port = (server: PrivateNatsServer): string => new URL(server.url).port;

beforeAll(async () => {
  makeCa('ca');
  makeCa('other-ca');
  makeServerCert('ca');
  writeFileSync(file('not-a-cert.pem'), 'hello\n');
  withTls = await startPrivateNatsServer({
    storeDir: file('tls-store'),
    config: `tls {\n  cert_file: "${file('server.crt')}"\n  key_file: "${file('server.key')}"\n}\n`,
  });
  plaintext = await startPrivateNatsServer({ storeDir: file('plain-store') });
});

afterAll(async () => {
  await withTls.stop();
  await plaintext.stop();
});

const connect = (url: string, caFile?: string): Promise<MessageBus> =>
  MessageBus.connect({ url, service: 'tls-test', ...(caFile ? { caFile } : {}) });

describe('a tls:// URL requires TLS with the given CA', () => {
  it.each([
    ['an IP address', '127.0.0.1'],
    ['a host name', 'localhost'],
  ])('connects over TLS to %s when the CA signed the server’s certificate', async (_what, host) => {
    const bus = await connect(`tls://${host}:${port(withTls)}`, file('ca.crt'));
    try {
      expect(bus.connection.info?.tls_required).toBe(true);
      // JetStream answers over it: the streams were ensured, and a request round-trips.
      const jsm = await bus.connection.jetstreamManager();
      expect((await jsm.streams.names().next()).length).toBeGreaterThan(0);
    } finally {
      await bus.close();
    }
  });

  it('refuses a server whose certificate another CA signed', async () => {
    await expect(connect(`tls://127.0.0.1:${port(withTls)}`, file('other-ca.crt'))).rejects.toThrow(
      /certificate/i,
    );
  });

  it('refuses a server whose certificate the system’s roots do not trust, when no CA is given', async () => {
    await expect(connect(`tls://127.0.0.1:${port(withTls)}`)).rejects.toThrow(/certificate/i);
  });

  it('refuses a plaintext server, with or without a CA', async () => {
    await expect(connect(`tls://127.0.0.1:${port(plaintext)}`, file('ca.crt'))).rejects.toThrow(
      /tls/i,
    );
    await expect(connect(`tls://127.0.0.1:${port(plaintext)}`)).rejects.toThrow(/tls/i);
  });

  it('still reaches a plaintext server over a nats:// URL', async () => {
    const bus = await connect(`nats://127.0.0.1:${port(plaintext)}`);
    await bus.close();
  });
});

describe('natsTls: what a URL and a CA file ask for', () => {
  it('refuses a CA beside a nats:// URL rather than connect in plaintext', () => {
    expect(() => natsTls('nats://nats:4222', file('ca.crt'))).toThrow(
      /is nats:\/\/: use tls:\/\/ to require TLS/,
    );
  });

  it('names a CA file it cannot read, or that holds no certificate', () => {
    expect(() => natsTls('tls://nats:4222', file('missing.pem'))).toThrow(
      `cannot read the NATS CA file ${file('missing.pem')}`,
    );
    expect(() => natsTls('tls://nats:4222', file('not-a-cert.pem'))).toThrow(
      /holds no PEM certificate/,
    );
  });

  it.each([
    ['nats://nats:4222', undefined, {}],
    ['tls://nats:4222', undefined, { tls: {} }],
  ])('%s with CA %s asks for %j', (url, caFile, expected) => {
    expect(natsTls(url, caFile)).toEqual(expected);
  });

  it('refuses a URL of another scheme', () => {
    expect(() => natsTls('http://nats:4222', undefined)).toThrow(/must be nats:\/\/ or tls:\/\//);
  });
});

describe('a real service over tls://', () => {
  const reporterMain = join(repositoryRoot, 'dist', 'services', 'reporter', 'src', 'main.js');
  const spawnReporter = (env: Record<string, string>, httpPort: number) => {
    const child = spawn(process.execPath, [reporterMain], {
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_PORT: String(httpPort),
        SQLITE_PATH: file(`reporter-${httpPort}.db`),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    return { child, exited, stderr: () => stderr };
  };

  it('boots and becomes ready with NATS_CA_FILE, connected over TLS', async () => {
    const httpPort = await freePort();
    const reporter = spawnReporter(
      { NATS_URL: `tls://localhost:${port(withTls)}`, NATS_CA_FILE: file('ca.crt') },
      httpPort,
    );
    try {
      await eventually(
        () =>
          fetch(`http://127.0.0.1:${httpPort}/readyz`)
            .then((r) => r.ok)
            .catch(() => false),
        'the reporter to be ready over TLS',
        30_000,
      );
      // Ready means connected: this server refuses every client that does not speak TLS.
    } finally {
      reporter.child.kill('SIGTERM');
      await reporter.exited;
    }
  });

  it.each([
    ['a CA beside a nats:// URL', 'nats', file('ca.crt'), /NATS_CA_FILE: .*use tls:\/\//],
    ['a CA file that is missing', 'tls', file('missing.pem'), /NATS_CA_FILE: cannot read/],
  ])('exits 2 at boot, naming NATS_CA_FILE, for %s', async (_what, scheme, caFile, message) => {
    const reporter = spawnReporter(
      { NATS_URL: `${scheme}://127.0.0.1:${port(withTls)}`, NATS_CA_FILE: caFile },
      await freePort(),
    );
    expect(await reporter.exited).toBe(2);
    expect(reporter.stderr()).toMatch(message);
  });
});
