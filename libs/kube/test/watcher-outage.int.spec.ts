/**
 * The watcher through an API outage, against the lab's API emulator (the sanctioned
 * stand-in for a real API server), stopped and started again on its port: the view is
 * stale while the API is away, nothing is sent from it, and once the API answers again the
 * watches resume and a change made meanwhile arrives.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterWatcher, loadKubeConfig, type ClusterSnapshot } from '#lumen/kube';
import { eventually } from '#lumen/testing';
import { ApiServer, ObjectStore, resourceByKind } from '../../lab/src/api/index.js';
import { selfSignedCertificate } from '../../lab/src/api/certificate.js';
import { renderKubeconfig } from '../../lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-outage-'));
const store = new ObjectStore();
let server: ApiServer;
let port: number;
let watcher: ClusterWatcher | undefined;

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: 'web' } },
  spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'web' }] },
  status: { phase: 'Running', podIP: '10.1.0.9', conditions: [{ type: 'Ready', status: 'True' }] },
});

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store, tls, token: 'outage-token' });
  const url = await server.listen();
  port = Number(new URL(url).port);
  writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig('outage', url, 'outage-token', tls.cert));
  store.create(resourceByKind('Namespace')!, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'default' },
  });
  store.create(resourceByKind('Pod')!, 'default', pod('web-0'));
});

afterAll(async () => {
  await watcher?.stop();
  await server.close();
});

it('is stale and sends nothing while the API is away, and resumes with what changed once it is back', async () => {
  const snapshots: ClusterSnapshot[] = [];
  const errors: string[] = [];
  const recovered: string[] = [];
  watcher = new ClusterWatcher(loadKubeConfig(join(dir, 'kubeconfig')), {
    debounceMs: 100,
    onSnapshot: (snapshot) => snapshots.push(snapshot),
    onError: (kind) => errors.push(kind),
    onRecovered: (kind) => recovered.push(kind),
  });
  await watcher.start();
  await eventually(() => snapshots.length === 1, 'the first snapshot', 5000, 50);
  expect(watcher.staleSince).toBeUndefined();

  await server.close();
  const staleSince = await eventually(
    () => watcher?.staleSince,
    'the view to go stale',
    10_000,
    50,
  );
  // One error per watch for the whole outage, however many restarts fail meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const reported = errors.length;
  expect(errors).toEqual(expect.arrayContaining(['Namespace', 'NetworkPolicy', 'Pod']));
  await new Promise((resolve) => setTimeout(resolve, 4000));
  expect(errors).toHaveLength(reported);
  expect(watcher.staleSince).toEqual(staleSince);
  const sentBefore = snapshots.length;

  // A pod comes while the API is away from the watcher; then the API is back on its port.
  store.create(resourceByKind('Pod')!, 'default', pod('web-1'));
  await server.listen(port);
  await eventually(
    () => snapshots.some((s) => s.cluster.pods.some((p) => p.name === 'web-1')),
    'the pod made during the outage',
    15_000,
    100,
  );
  expect(snapshots.length).toBeGreaterThan(sentBefore);
  expect(watcher.staleSince).toBeUndefined();
  // Every watch that failed listed again.
  expect(recovered.sort()).toEqual(errors.sort());
  // The first snapshot after the outage holds both pods: nothing was lost on the way.
  const after = snapshots[sentBefore]!;
  expect(after.cluster.pods.map((p) => p.name).sort()).toEqual(['web-0', 'web-1']);
});
