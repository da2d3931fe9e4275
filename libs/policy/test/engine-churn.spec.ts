import { describe, expect, it } from '@jest/globals';
import {
  PolicyEngine,
  ReferenceEvaluator,
  withNamespaceNameLabel,
  type Cluster,
  type Pod,
} from '#lumen/policy';

const web = (name: string, hash: string): Pod => ({
  namespace: 'shop',
  name,
  labels: { app: 'web', 'pod-template-hash': hash },
  hostNetwork: false,
  ip: `10.1.0.${Number(name.slice(4)) + 1}`,
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const cluster: Cluster = {
  namespaces: [withNamespaceNameLabel('shop'), withNamespaceNameLabel('ops', { team: 'ops' })],
  pods: [
    web('web-0', 'h0'),
    web('web-1', 'h0'),
    { ...web('web-2', 'x'), namespace: 'ops', labels: { app: 'probe' } },
  ],
  policies: [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: 'shop', name: 'web-from-ops' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }],
      },
    },
  ],
};

describe('PolicyEngine under rolling updates', () => {
  it('gives each rollout its class without a rebuild, and drops emptied classes once they are many', () => {
    const engine = new PolicyEngine(cluster);
    let rebuilds = 0;
    let pods = cluster.pods;
    for (let rollout = 1; rollout <= 100; rollout += 1) {
      for (const name of ['web-0', 'web-1']) {
        const pod = web(name, `h${rollout}`);
        if (engine.setPod(pod).reclassified) rebuilds += 1;
        pods = [...pods.filter((p) => p.name !== name), pod];
      }
      // The old class is empty now and not shown; the two pods share the new one.
      expect(engine.podClasses.map((c) => c.pods.length).sort()).toEqual([1, 2]);
    }
    // 100 rollouts left 100 empty classes: past 64 (and a quarter of all) one rebuild
    // dropped them, once; every other rollout was incremental.
    expect(rebuilds).toBe(1);
    const now: Cluster = { ...cluster, pods };
    const reference = new ReferenceEvaluator(now);
    for (const from of pods)
      for (const to of pods) {
        const connection = { from, to, port: 8080, protocol: 'TCP' as const };
        expect(engine.verdict(connection)).toEqual(reference.verdict(connection));
      }
  });
});
