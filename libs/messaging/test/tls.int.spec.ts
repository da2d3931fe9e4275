import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { durableServiceConsumers } from '#lumen/contracts';
import {
  MessageBus,
  natsTls,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { freePort } from '#lumen/host';
import { eventually, makeServerCertificate, makeTestCa, repositoryRoot } from '#lumen/testing';

// Real nats-servers, one with TLS (a certificate for localhost and 127.0.0.1 signed by a
// CA made here) and one without; the client is Lumen's own bus, as every service uses it.
const dir = mkdtempSync(join(tmpdir(), 'lumen-nats-tls-'));
const file = (name: string): string => join(dir, name);

let withTls: PrivateNatsServer;
/** A server whose certificate names only localhost, not the address it listens on. */
let localhostOnly: PrivateNatsServer;
let plaintext: PrivateNatsServer;
const port = (server: PrivateNatsServer): string => new URL(server.url).port;

beforeAll(async () => {
  const ca = makeTestCa(dir, 'ca');
  makeTestCa(dir, 'other-ca');
  makeServerCertificate(dir, 'server', ca, { dns: ['localhost'], ips: ['127.0.0.1'] });
  writeFileSync(file('not-a-cert.pem'), 'hello\n');
  withTls = await startPrivateNatsServer({
    storeDir: file('tls-store'),
    config: `tls {\n  cert_file: "${file('server.crt')}"\n  key_file: "${file('server.key')}"\n}\n`,
  });
  makeServerCertificate(dir, 'localhost-only', ca, { dns: ['localhost'] });
  localhostOnly = await startPrivateNatsServer({
    storeDir: file('localhost-only-store'),
    config: `tls {\n  cert_file: "${file('localhost-only.crt')}"\n  key_file: "${file('localhost-only.key')}"\n}\n`,
  });
  plaintext = await startPrivateNatsServer({ storeDir: file('plain-store') });
});

afterAll(async () => {
  await withTls.stop();
  await localhostOnly.stop();
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

  it('checks a server named by IP address against that address, not against localhost', async () => {
    await expect(connect(`tls://127.0.0.1:${port(localhostOnly)}`, file('ca.crt'))).rejects.toThrow(
      /127\.0\.0\.1/,
    );
    const bus = await connect(`tls://localhost:${port(localhostOnly)}`, file('ca.crt'));
    await bus.close();
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

  it.each([
    ['tls://10.0.0.7:4222', '10.0.0.7'],
    ['tls://lumen:secret@10.0.0.7:4222', '10.0.0.7'],
    ['tls://[fd00::7]:4222', 'fd00::7'],
  ])('%s checks the certificate against %s', (url, address) => {
    const check = natsTls(url, undefined).tls?.checkServerIdentity;
    expect(check).toBeDefined();
    const cert = { subject: { CN: 'x' }, subjectaltname: `IP Address:${address}` };
    expect(check?.('localhost', cert as never)).toBeUndefined();
    const other = { subject: { CN: 'x' }, subjectaltname: 'DNS:localhost' };
    expect(check?.('localhost', other as never)?.message).toMatch(
      `IP: ${address} is not in the cert's list`,
    );
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
    // The reporter waits for the streams and its consumers, which the scheduler makes;
    // this bus plays it.
    const scheduler = await connect(`tls://localhost:${port(withTls)}`, file('ca.crt'));
    await scheduler.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
    await scheduler.close();
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
