import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  PolicyEngine,
  ReferenceEvaluator,
  withNamespaceNameLabel,
  type Cluster,
  type ClusterPolicyManifest,
  type Connection,
  type ModelChange,
} from '#lumen/policy';
import {
  cluster,
  clusterChanges,
  tieredCluster,
  tieredClusterChanges,
  PROBE_PORTS,
  PROTOCOLS,
  type ClusterChange,
} from './arbitraries.js';

const SEED = 20261126;
const RUNS = 1000;

/** The cluster a change leaves, as the reference evaluator reads it. */
function applied(c: Cluster, change: ClusterChange): Cluster {
  switch (change.kind) {
    case 'setPod': {
      // A pod is its namespace and name: the same name elsewhere is another pod.
      const same = (p: Cluster['pods'][number]) =>
        p.name === change.pod.name && p.namespace === change.pod.namespace;
      return { ...c, pods: [...c.pods.filter((p) => !same(p)), change.pod] };
    }
    case 'deletePod': {
      const gone = c.pods.find((p) => p.name === change.name);
      return { ...c, pods: c.pods.filter((p) => p !== gone) };
    }
    case 'setNamespace':
      return {
        ...c,
        namespaces: [
          ...c.namespaces.filter((n) => n.name !== change.name),
          withNamespaceNameLabel(change.name, change.labels),
        ],
      };
    case 'deleteNamespace':
      // A namespace that still has pods keeps them, with no labels but its name.
      return {
        ...c,
        namespaces: [
          ...c.namespaces.filter((n) => n.name !== change.name),
          ...(c.pods.some((p) => p.namespace === change.name)
            ? [withNamespaceNameLabel(change.name)]
            : []),
        ],
      };
    case 'setPolicy':
      return {
        ...c,
        policies: [
          ...c.policies.filter(
            (p) =>
              p.metadata.name !== change.policy.metadata.name ||
              p.metadata.namespace !== change.policy.metadata.namespace,
          ),
          change.policy,
        ],
      };
    case 'deletePolicy': {
      // The first policy of that name, in whichever namespace (as apply deletes it).
      const gone = c.policies.find((p) => p.metadata.name === change.name);
      return { ...c, policies: c.policies.filter((p) => p !== gone) };
    }
    case 'setClusterPolicy': {
      const same = (p: ClusterPolicyManifest) =>
        p.kind === change.policy.kind && p.metadata.name === change.policy.metadata.name;
      return {
        ...c,
        clusterPolicies: [...(c.clusterPolicies ?? []).filter((p) => !same(p)), change.policy],
      };
    }
    case 'deleteClusterPolicy':
      return {
        ...c,
        clusterPolicies: (c.clusterPolicies ?? []).filter(
          (p) => p.kind !== change.policyKind || p.metadata.name !== change.name,
        ),
      };
  }
}

function apply(engine: PolicyEngine, c: Cluster, change: ClusterChange): ModelChange | undefined {
  switch (change.kind) {
    case 'setPod':
      return engine.setPod(change.pod);
    case 'deletePod': {
      const pod = c.pods.find((p) => p.name === change.name);
      return pod ? engine.deletePod(pod) : undefined;
    }
    case 'setNamespace':
      return engine.setNamespace({ name: change.name, labels: change.labels });
    case 'deleteNamespace':
      return engine.deleteNamespace(change.name);
    case 'setPolicy':
      return engine.setPolicy(change.policy);
    case 'deletePolicy': {
      const policy = c.policies.find((p) => p.metadata.name === change.name);
      return policy
        ? engine.deletePolicy(policy.metadata.namespace, policy.metadata.name)
        : undefined;
    }
    case 'setClusterPolicy':
      return engine.setClusterPolicy(change.policy);
    case 'deleteClusterPolicy':
      return engine.deleteClusterPolicy(change.policyKind, change.name);
  }
}

function connections(c: Cluster): Connection[] {
  return c.pods.flatMap((from) =>
    c.pods.flatMap((to) =>
      PROBE_PORTS.flatMap((port) => PROTOCOLS.map((protocol) => ({ from, to, port, protocol }))),
    ),
  );
}

/** How often the random clusters reached each interesting situation. */
const seen = { denied: 0, allowedByIngressRule: 0, allowedByEgressRule: 0, unprobeable: 0 };

function assertSameAnswers(engine: PolicyEngine, c: Cluster): void {
  const reference = new ReferenceEvaluator(c);
  for (const connection of connections(c)) {
    const compiled = engine.verdict(connection);
    const expected = reference.verdict(connection);
    // Serialised comparison first: toEqual on every one of ~10^6 verdicts is too slow.
    if (JSON.stringify(compiled) !== JSON.stringify(expected)) {
      expect({ connection, verdict: compiled }).toEqual({ connection, verdict: expected });
    }
    if (!compiled.allowed) seen.denied += 1;
    if (compiled.explanation.ingress.allowedBy.length > 0) seen.allowedByIngressRule += 1;
    if (compiled.explanation.egress.allowedBy.length > 0) seen.allowedByEgressRule += 1;
    if (compiled.explanation.unprobeable) seen.unprobeable += 1;
  }
}

describe(`compiled engine vs reference evaluator (fast-check seed ${SEED}, ${RUNS} clusters)`, () => {
  it('gives identical verdicts and explanations for every pod pair, port and protocol', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        assertSameAnswers(new PolicyEngine(c), c);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The generator must reach every kind of answer, or agreement proves little.
    for (const count of Object.values(seen)) expect(count).toBeGreaterThan(RUNS);
  });

  it('answers matrix rows exactly as the pairwise verdicts', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        const engine = new PolicyEngine(c);
        for (const destination of engine.podClasses) {
          for (const port of PROBE_PORTS) {
            for (const protocol of PROTOCOLS) {
              const row = engine.allowedSources(destination, port, protocol);
              for (const source of engine.podClasses) {
                const verdict = engine.classVerdict(source, destination, port, protocol);
                expect(row.has(source.id)).toBe(verdict.allowed);
              }
            }
          }
        }
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('follows any sequence of pod, namespace and policy changes without a rebuild, as the reference says', () => {
    const counts = { changes: 0, rebuilds: 0, newClasses: 0, relabelsThatMovedPeers: 0 };
    fc.assert(
      fc.property(cluster, clusterChanges, (initial, sequence) => {
        const engine = new PolicyEngine(initial);
        let current = initial;
        for (const change of sequence) {
          const classesBefore = engine.podClasses.length;
          const model = apply(engine, current, change);
          current = applied(current, change);
          assertSameAnswers(engine, current);
          counts.changes += 1;
          // A policy with a new ipBlock still rebuilds (it splits classes by address).
          if (model?.reclassified && change.kind !== 'setPolicy') counts.rebuilds += 1;
          if (change.kind === 'setPod' && engine.podClasses.length > classesBefore)
            counts.newClasses += 1;
          if (change.kind === 'setNamespace' && (model?.affectedClasses.length ?? 0) > 0)
            counts.relabelsThatMovedPeers += 1;
        }
        // Every pod is in exactly one shown class, and no class is empty. A class may be
        // finer than a fresh engine's (an ipBlock of a deleted policy still splits), but
        // never mixes pods that a fresh engine tells apart.
        const names = (pods: readonly { namespace: string; name: string }[]) =>
          pods.map((p) => `${p.namespace}/${p.name}`).sort();
        expect(names(engine.podClasses.flatMap((k) => k.pods))).toEqual(names(current.pods));
        expect(engine.podClasses.every((k) => k.pods.length > 0)).toBe(true);
        const fresh = new PolicyEngine(current);
        for (const podClass of engine.podClasses)
          expect(new Set(podClass.pods.map((p) => fresh.classOf(p)?.key)).size).toBe(1);
      }),
      { seed: SEED + 3, numRuns: 300 },
    );
    // The sequences reach the incremental paths often; pod and namespace changes never rebuild.
    expect(counts.changes).toBeGreaterThan(1000);
    expect(counts.newClasses).toBeGreaterThan(200);
    expect(counts.relabelsThatMovedPeers).toBeGreaterThan(20);
    expect(counts.rebuilds).toBe(0);
  });

  it('reaches the same model incrementally as from scratch', () => {
    fc.assert(
      fc.property(cluster, fc.nat(), (c, pick) => {
        const [changed, ...others] = [
          ...c.policies.slice(pick % Math.max(1, c.policies.length)),
          ...c.policies.slice(0, pick % Math.max(1, c.policies.length)),
        ];
        const engine = new PolicyEngine({ ...c, policies: others });
        if (changed) engine.setPolicy(changed);
        assertSameAnswers(engine, c);
        if (changed) {
          engine.deletePolicy(changed.metadata.namespace, changed.metadata.name);
          assertSameAnswers(engine, { ...c, policies: others });
        }
        const [movedPod, ...otherPods] = c.pods;
        if (movedPod) {
          const withoutPod = new PolicyEngine({ ...c, pods: otherPods });
          withoutPod.setPod(movedPod);
          assertSameAnswers(withoutPod, { ...c, pods: [...otherPods, movedPod] });
          withoutPod.deletePod(movedPod);
          if (otherPods.length > 0) assertSameAnswers(withoutPod, { ...c, pods: otherPods });
        }
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });
});

describe(`the tiers: compiled engine vs reference evaluator (fast-check seed ${SEED})`, () => {
  it('gives identical verdicts and explanations with ClusterNetworkPolicies, AdminNetworkPolicies and the BaselineAdminNetworkPolicy', () => {
    const tiers = { Admin: 0, NetworkPolicy: 0, Baseline: 0, default: 0, passed: 0, ambiguous: 0 };
    fc.assert(
      fc.property(tieredCluster, (c) => {
        const engine = new PolicyEngine(c);
        expect(engine.errors).toEqual([]);
        assertSameAnswers(engine, c);
        for (const connection of connections(c)) {
          const verdict = engine.verdict(connection);
          for (const side of [verdict.explanation.egress, verdict.explanation.ingress]) {
            if (side.tier) tiers[side.tier] += 1;
            if (side.passedBy) tiers.passed += 1;
          }
          if (verdict.ambiguous) tiers.ambiguous += 1;
        }
      }),
      { seed: SEED + 10, numRuns: 500 },
    );
    // Every tier decides somewhere, Pass hands on, and equal priorities clash (rarer: two
    // policies of one tier and priority must both match the pair and decide differently).
    const { ambiguous, ...decided } = tiers;
    for (const count of Object.values(decided)) expect(count).toBeGreaterThan(500);
    expect(ambiguous).toBeGreaterThan(100);
  });

  it('answers matrix rows exactly as the pairwise verdicts, with the tiers', () => {
    fc.assert(
      fc.property(tieredCluster, (c) => {
        const engine = new PolicyEngine(c);
        for (const destination of engine.podClasses)
          for (const port of [80, 8080])
            for (const protocol of PROTOCOLS) {
              const row = engine.allowedSources(destination, port, protocol);
              for (const source of engine.podClasses)
                expect(row.has(source.id)).toBe(
                  engine.classVerdict(source, destination, port, protocol).allowed,
                );
            }
      }),
      { seed: SEED + 11, numRuns: 200 },
    );
  });

  it('follows any sequence of changes to pods, namespaces and policies of every tier, as the reference says', () => {
    let clusterPolicyChanges = 0;
    fc.assert(
      fc.property(tieredCluster, tieredClusterChanges, (initial, sequence) => {
        const engine = new PolicyEngine(initial);
        let current = initial;
        for (const change of sequence) {
          apply(engine, current, change);
          current = applied(current, change);
          assertSameAnswers(engine, current);
          if (change.kind === 'setClusterPolicy' || change.kind === 'deleteClusterPolicy')
            clusterPolicyChanges += 1;
        }
      }),
      { seed: SEED + 12, numRuns: 200 },
    );
    expect(clusterPolicyChanges).toBeGreaterThan(200);
  });
});
