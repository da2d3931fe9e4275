import { afterAll, expect, it } from '@jest/globals';
import { PolicyEngine } from '#lumen/policy';
import { conformanceScenarioFiles, eventually } from '#lumen/testing';
import { ClusterWatcher, loadKubeConfig, type ClusterSnapshot } from '#lumen/kube';
import { scenario, upLab, type TestLab } from '../../lab/test/support.js';

const file = conformanceScenarioFiles().find((f) =>
  f.endsWith('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
)!;
let lab: TestLab | undefined;
let watcher: ClusterWatcher | undefined;
afterAll(async () => {
  await watcher?.stop();
  await lab?.down();
});

it('keeps a model of the cluster through client-node informers, across changes and a relist after 410', async () => {
  const { expectations } = scenario(file);
  lab = await upLab('kube-watch', file);
  const snapshots: ClusterSnapshot[] = [];
  watcher = new ClusterWatcher(loadKubeConfig(lab.status.kubeconfig), {
    debounceMs: 100,
    onSnapshot: (s) => snapshots.push(s),
  });
  await watcher.start();

  const first = await eventually(() => snapshots[0], 'the first snapshot');
  expect(first.cluster.pods).toHaveLength(5);
  expect(first.cluster.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual([
    'default/web-allow-all-ns-monitoring',
  ]);
  expect(first.pods.every((p) => p.running && p.ip && p.node?.startsWith('lab-node-'))).toBe(true);
  const engine = new PolicyEngine(first.cluster);
  for (const row of expectations) expect(engine.verdict(row).allowed).toBe(row.allowed);

  await lab.client.send('POST', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', {
    metadata: { name: 'deny-all' },
    spec: { podSelector: {}, ingress: [] },
  });
  const withPolicy = await eventually(
    () => snapshots.find((s) => s.changes.some((c) => c.key === 'default/deny-all')),
    'the new policy',
  );
  expect(withPolicy.changes).toContainEqual({
    kind: 'NetworkPolicy',
    type: 'upsert',
    key: 'default/deny-all',
  });
  expect(withPolicy.cluster.policies).toHaveLength(2);

  // Forget the watch history and drop every watch: the informers must relist after 410.
  await lab.client.send('POST', '/lab/v1/compact');
  await lab.client.send(
    'DELETE',
    '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/deny-all',
  );
  const afterRelist = await eventually(
    () =>
      snapshots.find((s) =>
        s.changes.some((c) => c.key === 'default/deny-all' && c.type === 'delete'),
      ),
    'the deletion after the relist',
  );
  expect(afterRelist.cluster.policies).toHaveLength(1);
});
