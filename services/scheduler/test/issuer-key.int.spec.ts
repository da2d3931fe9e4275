/**
 * The chart's hook Job that makes the NATS auth callout's issuer key (ADR 0016): the real
 * compiled script as a process, against the lab's API emulator (the sanctioned stand-in for
 * a real API server).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AuthCalloutResponder } from '#lumen/messaging';
import { repositoryRoot } from '#lumen/testing';
import { ApiServer, ObjectStore } from '../../../libs/lab/src/api/index.js';
import { selfSignedCertificate } from '../../../libs/lab/src/api/certificate.js';
import { renderKubeconfig } from '../../../libs/lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-issuer-key-'));
let server: ApiServer;
let core: CoreV1Api;

async function issuerKey(
  secret: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(
    process.execPath,
    [join(repositoryRoot, 'dist', 'services', 'scheduler', 'src', 'issuer-key.js')],
    {
      env: {
        PATH: process.env.PATH,
        KUBECONFIG: join(dir, 'kubeconfig'),
        POD_NAMESPACE: 'lumen',
        CALLOUT_SECRET_NAME: secret,
      },
    },
  ).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: unknown) => error as { code: number; stdout: string; stderr: string },
  );
}

async function secretData(name: string): Promise<Record<string, string>> {
  const secret = await core.readNamespacedSecret({ namespace: 'lumen', name });
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  );
}

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store: new ObjectStore(), tls, token: 'keygen-token' });
  const url = await server.listen();
  writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig('keygen', url, 'keygen-token', tls.cert));
  const config = new KubeConfig();
  config.loadFromFile(join(dir, 'kubeconfig'));
  core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'lumen' } } });
});

afterAll(async () => {
  await server.close();
});

describe('issuer-key (the chart’s hook Job)', () => {
  it('makes the issuer Secret once, and keeps it on every later run', async () => {
    const first = await issuerKey('lumen-nats-callout');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(
      /^made the NATS auth callout issuer A[A-Z2-7]{55} in Secret lumen\/lumen-nats-callout\n$/,
    );
    const data = await secretData('lumen-nats-callout');
    expect(AuthCalloutResponder.issuerPublicKey(data.seed ?? '')).toBe(data.issuer);
    expect(first.stdout).toContain(data.issuer);
    expect(first.stdout).not.toContain(data.seed);

    const again = await issuerKey('lumen-nats-callout');
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toBe(first.stdout.replace(/^made/, 'kept'));
    expect(await secretData('lumen-nats-callout')).toEqual(data);
  });

  it('refuses, and changes nothing, when the Secret holds a seed that is not its key’s', async () => {
    await core.createNamespacedSecret({
      namespace: 'lumen',
      body: {
        metadata: { name: 'tampered' },
        stringData: { seed: 'SAAGARBAGE', issuer: 'AXXXX' },
      },
    });
    const result = await issuerKey('tampered');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /Secret lumen\/tampered does not hold a matching issuer seed and key .*delete it/,
    );
    expect(await secretData('tampered')).toEqual({ seed: 'SAAGARBAGE', issuer: 'AXXXX' });
  });

  it('names a bad setting and exits 1', async () => {
    const result = await issuerKey('Not_A_Name');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/CALLOUT_SECRET_NAME: must be a Secret name/);
  });
});
