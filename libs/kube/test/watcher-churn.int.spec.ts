/**
 * The watcher under sustained churn, against the lab's API emulator (the sanctioned
 * stand-in for a real API server): pods change every 20 ms for 1.5 s, far more often than
 * the 200 ms debounce. A debounce restarted by every change would hold every snapshot
 * back until the churn ends; the watcher must keep sending them while it lasts.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterWatcher, loadKubeConfig, type ClusterSnapshot } from '#lumen/kube';
import { ApiServer, ObjectStore, resourceByKind } from '../../lab/src/api/index.js';
import { selfSignedCertificate } from '../../lab/src/api/certificate.js';
import { renderKubeconfig } from '../../lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-churn-'));
const store = new ObjectStore();
let server: ApiServer;
let watcher: ClusterWatcher | undefined;

const pod = (name: string, hash: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: 'web', 'pod-template-hash': hash } },
  spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'web' }] },
  status: { phase: 'Running', podIP: '10.1.0.9', conditions: [{ type: 'Ready', status: 'True' }] },
});

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store, tls, token: 'churn-token' });
  writeFileSync(
    join(dir, 'kubeconfig'),
    renderKubeconfig('churn', await server.listen(), 'churn-token', tls.cert),
  );
  store.create(resourceByKind('Namespace')!, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'default' },
  });
});

afterAll(async () => {
  await watcher?.stop();
  await server.close();
});

it('sends snapshots while churn lasts, at most one debounce interval apart', async () => {
  const snapshots: { at: number; snapshot: ClusterSnapshot }[] = [];
  watcher = new ClusterWatcher(loadKubeConfig(join(dir, 'kubeconfig')), {
    debounceMs: 200,
    onSnapshot: (snapshot) => snapshots.push({ at: Date.now(), snapshot }),
  });
  await watcher.start();
  const podType = resourceByKind('Pod')!;
  const churnStarted = Date.now();
  for (let i = 0; Date.now() - churnStarted < 1500; i += 1) {
    store.create(podType, 'default', pod(`web-${i}`, `h${i}`));
    if (i > 0) store.delete(podType, 'default', `web-${i - 1}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const churnEnded = Date.now();
  const during = snapshots.filter((s) => s.at > churnStarted && s.at <= churnEnded);
  // About seven at a 200 ms interval; a restarted debounce gives none.
  expect(during.length).toBeGreaterThanOrEqual(3);
  // And the last one, after the churn, has the last pod only.
  await new Promise((resolve) => setTimeout(resolve, 600));
  const last = snapshots.at(-1)!.snapshot;
  expect(last.cluster.pods.map((p) => p.name)).toHaveLength(1);
});

it('sends nothing once stopped, not even a change that came just before, nor errors', async () => {
  await watcher?.stop();
  const snapshots: ClusterSnapshot[] = [];
  const errors: string[] = [];
  watcher = new ClusterWatcher(loadKubeConfig(join(dir, 'kubeconfig')), {
    debounceMs: 200,
    onSnapshot: (snapshot) => snapshots.push(snapshot),
    onError: (kind, error) => errors.push(`${kind}: ${String(error)}`),
  });
  await watcher.start();
  await new Promise((resolve) => setTimeout(resolve, 400));
  const before = snapshots.length;
  // A change inside the debounce window, then stop: the pending snapshot must not come.
  store.create(resourceByKind('Pod')!, 'default', pod('late-0', 'late'));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await watcher.stop();
  store.create(resourceByKind('Pod')!, 'default', pod('late-1', 'late'));
  // Past the debounce and the informers' 1 s restart after an error.
  await new Promise((resolve) => setTimeout(resolve, 1600));
  expect(snapshots.length).toBe(before);
  expect(errors).toEqual([]);
});
