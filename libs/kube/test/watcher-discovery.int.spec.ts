/**
 * Policy CRDs installed after the watcher started, against the lab's API emulator (the
 * sanctioned stand-in for a real API server) over real HTTPS: until a CRD is installed its
 * list answers 404 and nothing of it is watched; once it is, the next discovery round
 * watches it, and its objects reach the snapshots without a restart.
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

const dir = mkdtempSync(join(tmpdir(), 'lumen-discovery-'));
const store = new ObjectStore();
let server: ApiServer;
let watcher: ClusterWatcher | undefined;
const CNP = 'clusternetworkpolicies.policy.networking.k8s.io';
const CILIUM = 'ciliumnetworkpolicies.cilium.io';

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store, tls, token: 'discovery-token', notInstalled: [CNP, CILIUM] });
  writeFileSync(
    join(dir, 'kubeconfig'),
    renderKubeconfig('discovery', await server.listen(), 'discovery-token', tls.cert),
  );
  store.create(resourceByKind('Namespace')!, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'tenant-a' },
  });
});

afterAll(async () => {
  await watcher?.stop();
  await server.close();
});

it('watches a policy CRD installed after it started, and reports the kind it found', async () => {
  const snapshots: ClusterSnapshot[] = [];
  const discovered: string[] = [];
  const errors: unknown[] = [];
  watcher = new ClusterWatcher(loadKubeConfig(join(dir, 'kubeconfig')), {
    debounceMs: 50,
    discoveryMs: 100,
    onSnapshot: (snapshot) => snapshots.push(snapshot),
    onDiscovered: (kind, group) => discovered.push(`${kind}.${group}`),
    onError: (_kind, error) => errors.push(error),
  });
  await watcher.start();
  await eventually(() => snapshots.length > 0 || undefined, 'the first snapshot', 10_000, 20);
  // Not installed: the 404 means "no such CRD", and nothing of it is watched.
  expect(watcher.clusterPolicyKinds).not.toContain('ClusterNetworkPolicy');
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(discovered).toEqual([]);

  server.installCrd(CNP);
  server.installCrd(CILIUM);
  store.create(resourceByKind('ClusterNetworkPolicy')!, undefined, {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'isolate' },
    spec: {
      tier: 'Admin',
      priority: 10,
      subject: { namespaces: {} },
      ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
    },
  });
  store.create(resourceByKind('CiliumNetworkPolicy')!, 'tenant-a', {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'l7', namespace: 'tenant-a' },
    spec: { endpointSelector: {} },
  });

  const latest = await eventually(
    () => {
      const last = snapshots.at(-1);
      return last?.cluster.clusterPolicies?.length === 1 && last.unmodelled.length === 1
        ? last
        : undefined;
    },
    'a snapshot with the ClusterNetworkPolicy and the CiliumNetworkPolicy',
    10_000,
    50,
  );
  expect(latest.cluster.clusterPolicies?.map((p) => p.metadata.name)).toEqual(['isolate']);
  expect(latest.unmodelled).toEqual([
    { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'tenant-a', name: 'l7' },
  ]);
  expect(discovered.sort()).toEqual([
    'CiliumNetworkPolicy.cilium.io',
    'ClusterNetworkPolicy.policy.networking.k8s.io',
  ]);
  expect(watcher.clusterPolicyKinds).toContain('ClusterNetworkPolicy');
  // Later rounds leave a watched kind alone: it is found once.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(discovered).toHaveLength(2);
  expect(errors).toEqual([]);
});

it('forgets a kind whose CRD is removed, and goes on planning without it', async () => {
  // Continues from the test above: ClusterNetworkPolicy "isolate" is watched.
  const snapshots: ClusterSnapshot[] = [];
  const uninstalled: string[] = [];
  await watcher?.stop();
  watcher = new ClusterWatcher(loadKubeConfig(join(dir, 'kubeconfig')), {
    debounceMs: 50,
    discoveryMs: 100,
    onSnapshot: (snapshot) => snapshots.push(snapshot),
    onUninstalled: (kind) => uninstalled.push(kind),
  });
  await watcher.start();
  await eventually(
    () => snapshots.at(-1)?.cluster.clusterPolicies?.length === 1,
    'a snapshot with the ClusterNetworkPolicy',
    10_000,
    50,
  );
  server.uninstallCrd(CNP);
  store.create(resourceByKind('Namespace')!, undefined, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'tenant-b' },
  });
  const after = await eventually(
    () => {
      const last = snapshots.at(-1);
      return last?.cluster.namespaces.some((n) => n.name === 'tenant-b') &&
        !last.cluster.clusterPolicies?.length
        ? last
        : undefined;
    },
    'a snapshot without the ClusterNetworkPolicy, with the new namespace',
    15_000,
    50,
  );
  expect(after.changes).toEqual(
    expect.arrayContaining([{ kind: 'ClusterNetworkPolicy', type: 'delete', key: 'isolate' }]),
  );
  expect(uninstalled).toEqual(['ClusterNetworkPolicy']);
  expect(watcher.staleSince).toBeUndefined();
  expect(watcher.clusterPolicyKinds).not.toContain('ClusterNetworkPolicy');
});
