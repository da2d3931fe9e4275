/**
 * Leader election on a Lease, against the lab's API emulator (the sanctioned stand-in for
 * a real API server) over client-node: one holder at a time, a standby that takes over
 * when the holder stops renewing or hands the lease back, and MicroTime as the API wants.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseElector } from '#lumen/kube';
import { ApiServer, ObjectStore } from '../../lab/src/api/index.js';
import { selfSignedCertificate } from '../../lab/src/api/certificate.js';
import { renderKubeconfig } from '../../lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-lease-'));
let server: ApiServer;
let config: KubeConfig;

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store: new ObjectStore(), tls, token: 'lease-token' });
  const url = await server.listen();
  writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig('lease', url, 'lease-token', tls.cert));
  config = new KubeConfig();
  config.loadFromFile(join(dir, 'kubeconfig'));
  await config.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'lumen' } } });
});

afterAll(async () => {
  await server.close();
});

const elector = (identity: string, name: string, leaseDurationSeconds = 2): LeaseElector =>
  new LeaseElector(config, { namespace: 'lumen', name, identity, leaseDurationSeconds });

async function holder(name: string): Promise<string | undefined> {
  const lease = await config
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name, namespace: 'lumen' });
  return lease.spec?.holderIdentity;
}

describe('LeaseElector', () => {
  it('lets one replica lead while it renews, and a standby take over once it stops', async () => {
    // A 5 s lease, renewed every 1.7 s: a busy CI machine delayed one renewal of a 2 s
    // lease past its expiry, and the standby took over from a holder that was still alive.
    const a = elector('planner-a', 'lumen-planner', 5);
    const b = elector('planner-b', 'lumen-planner', 5);
    await a.acquire();
    let lost = '';
    a.keepRenewing((why) => (lost = why));
    let bLeads = false;
    const bAcquired = b.acquire().then(() => (bLeads = true));
    // Over two lease durations: a keeps renewing, b keeps waiting.
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    expect(bLeads).toBe(false);
    expect(await holder('lumen-planner')).toBe('planner-a');
    expect(lost).toBe('');
    // a stops renewing: b takes over.
    await a.release();
    await bAcquired;
    expect(await holder('lumen-planner')).toBe('planner-b');
    await b.release();
  });

  it('hands the lease back on a graceful stop, long before it would expire', async () => {
    // A 30 s lease: a standby that had to wait for expiry would wait 30 s; one that sees
    // the lease handed back takes it at its next retry (every 10 s).
    const a = elector('scheduler-a', 'lumen-handback', 30);
    const b = elector('scheduler-b', 'lumen-handback', 30);
    await a.acquire();
    const bAcquired = b.acquire();
    const handedBack = Date.now();
    await a.release();
    await bAcquired;
    expect(Date.now() - handedBack).toBeLessThan(20_000);
    expect(await holder('lumen-handback')).toBe('scheduler-b');
    await b.release();
  });

  it('takes over an expired lease from a holder that died without handing it back', async () => {
    const dead = elector('reporter-a', 'lumen-reporter');
    await dead.acquire(); // and never renews: the process "died"
    const standby = elector('reporter-b', 'lumen-reporter');
    const started = Date.now();
    await standby.acquire();
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(1500); // not before the 2 s lease expired
    expect(await holder('lumen-reporter')).toBe('reporter-b');
    const lease = await config
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'lumen-reporter', namespace: 'lumen' });
    expect(lease.spec?.leaseTransitions).toBe(1);
    // RFC 3339 with six fractional digits, as the real API server requires for MicroTime.
    expect(String(lease.spec?.renewTime as unknown)).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/,
    );
    await standby.release();
  });

  it('tells the holder when another replica took the lease', async () => {
    const a = elector('scheduler-a', 'lumen-scheduler');
    await a.acquire();
    const lost = new Promise<string>((resolve) => {
      a.keepRenewing(resolve);
    });
    // Someone else writes the lease (an operator, or a replica that saw it expired).
    const api = config.makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ name: 'lumen-scheduler', namespace: 'lumen' });
    await api.replaceNamespacedLease({
      name: 'lumen-scheduler',
      namespace: 'lumen',
      body: {
        metadata: lease.metadata,
        spec: {
          holderIdentity: 'scheduler-b',
          leaseDurationSeconds: 60,
          renewTime: new Date(Date.now() + 60_000)
            .toISOString()
            .replace('Z', '000Z') as unknown as Date,
        },
      },
    });
    expect(await lost).toBe('another replica holds the lease');
  });
});
