import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PolicyEngine, ReferenceEvaluator, type Cluster } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { join } from 'node:path';
import { conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';
import { caseIdOf, planCases, type PlannedCase } from '#lumen/planner';
import { cluster as randomCluster, tieredCluster } from '../../policy/test/arbitraries.js';

const recipe = (suffix: string): Cluster =>
  loadScenarioFile(conformanceScenarioFiles().find((f) => f.endsWith(suffix))!).cluster;
const describeCase = (c: PlannedCase): string =>
  `${c.reason} ${c.source.pods[0]?.namespace}/${c.source.pods[0]?.name} -> ${c.destination.pods[0]?.namespace}/${c.destination.pods[0]?.name} ${c.port}/${c.protocol} ${c.expected}`;

describe('planCases', () => {
  it('turns recipe 07 into its must-allow case and the three near misses', () => {
    const plan = planCases(
      new PolicyEngine(recipe('07-allow-traffic-from-some-pods-in-another-namespace.yaml')),
      { probeBudget: 0 },
    );
    const rule = plan.cases
      .filter((c) => c.rule?.policy === 'default/web-allow-all-ns-monitoring')
      .map(describeCase)
      .sort();
    expect(rule).toEqual([
      'must-allow other/monitoring -> default/web 80/TCP allow',
      'near-miss-both default/client -> default/web 80/TCP deny',
      'near-miss-namespace default/monitoring -> default/web 80/TCP deny',
      'near-miss-pods other/client -> default/web 80/TCP deny',
    ]);
    expect(plan.cases.find((c) => c.reason === 'must-allow')).toMatchObject({
      rule: { policy: 'default/web-allow-all-ns-monitoring', direction: 'ingress', index: 0 },
      listenerKnown: true,
      loopback: false,
      explanation: { ingress: { isolated: true, allowed: true } },
    });
  });

  it('checks isolation: an unlisted source and an unlisted port are denied (ingress)', () => {
    const plan = planCases(new PolicyEngine(recipe('09-allow-traffic-only-to-a-port.yaml')), {
      probeBudget: 0,
    });
    const reasons = new Set(plan.cases.filter((c) => c.expected === 'deny').map((c) => c.reason));
    expect(reasons).toEqual(new Set(['unlisted-port', ...reasons]));
    for (const c of plan.cases.filter((c) => c.reason.startsWith('unlisted')))
      expect(c.expected).toBe('deny');
  });

  it('checks egress isolation too', () => {
    const plan = planCases(
      new PolicyEngine(recipe('11-deny-egress-traffic-from-an-application.yaml')),
      { probeBudget: 0 },
    );
    const egressDenied = plan.cases.filter(
      (c) => c.reason.startsWith('unlisted') && !c.explanation.egress.allowed,
    );
    expect(egressDenied.length).toBeGreaterThan(0);
    expect(egressDenied.every((c) => c.source.labels.app === 'foo')).toBe(true);
  });

  it('keeps case ids when pods are replaced by others of the same class', () => {
    const original = recipe('07-allow-traffic-from-some-pods-in-another-namespace.yaml');
    const renamed = {
      ...original,
      pods: original.pods.map((p) => ({ ...p, name: `${p.name}-7d9f8` })),
    };
    const ids = (c: Cluster): string[] =>
      planCases(new PolicyEngine(c), { probeBudget: Infinity })
        .cases.map((x) => x.caseId)
        .sort();
    expect(ids(renamed)).toEqual(ids(original));
    expect(caseIdOf('a', 'b', 80, 'TCP')).toMatch(/^[0-9a-f]{16}$/);
    expect(caseIdOf('a', 'b', 80, 'TCP')).not.toBe(caseIdOf('a', 'b', 80, 'UDP'));
  });

  describe('the class matrix', () => {
    // Nine pods in three namespaces, TCP and UDP on 80 and 81 (cyclonus' shape).
    const cyclonus: Cluster = {
      namespaces: ['x', 'y', 'z'].map((name) => ({ name, labels: {} })),
      pods: ['x', 'y', 'z'].flatMap((namespace) =>
        ['a', 'b', 'c'].map((pod, i) => ({
          namespace,
          name: pod,
          labels: { pod },
          hostNetwork: false,
          ip: `10.0.${namespace.charCodeAt(0) - 119}.${i + 1}`,
          ports: [80, 81].flatMap((port) =>
            (['TCP', 'UDP'] as const).map((protocol) => ({ port, protocol })),
          ),
        })),
      ),
      policies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { namespace: 'x', name: 'a-egress-to-y-a' },
          spec: {
            podSelector: { matchLabels: { pod: 'a' } },
            policyTypes: ['Egress'],
            egress: [
              {
                to: [
                  {
                    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } },
                    podSelector: { matchLabels: { pod: 'a' } },
                  },
                ],
              },
            ],
          },
        },
      ],
    };
    const engine = new PolicyEngine(cyclonus);

    it('counts every class-level connection: 9 × 8 × 4 = 288 cells, no pod to itself', () => {
      const plan = planCases(engine, { probeBudget: Infinity });
      expect(plan.coverage).toMatchObject({ cells: 288, sweepsPerRotation: 1 });
      expect(plan.coverage.rotationCursor).toBeUndefined();
      const cells = plan.cases.filter((c) => !c.loopback && c.port !== 65432);
      expect(cells).toHaveLength(288);
      expect(plan.cases.every((c) => c.source.id !== c.destination.id)).toBe(true);
    });

    it('probes near misses on the egress side: namespace matches and pod does not, and the reverse', () => {
      const plan = planCases(engine, { probeBudget: 0 });
      const misses = plan.cases
        .filter((c) => c.reason.startsWith('near-miss'))
        .map(
          (c) =>
            `${c.reason} ${c.source.namespace}/${c.source.labels.pod} -> ${c.destination.namespace}/${c.destination.labels.pod} ${c.expected}`,
        )
        .sort();
      expect(misses).toEqual([
        expect.stringMatching(/^near-miss-both x\/a -> [xz]\/[bc] deny$/),
        expect.stringMatching(/^near-miss-namespace x\/a -> [xz]\/a deny$/),
        'near-miss-pods x/a -> y/b deny',
      ]);
      // The egress side's isolation: a destination the rule does not list.
      expect(
        plan.cases.some((c) => c.reason === 'unlisted-destination' && c.expected === 'deny'),
      ).toBe(true);
    });

    it('fills the budget with the cells probed least recently, and comes round to every cell', () => {
      const obligations = planCases(engine, { probeBudget: 0 });
      const budget = obligations.coverage.obligations + 50;
      const seen = new Set(obligations.cases.map((c) => c.caseId));
      let cursor: string | undefined;
      const sweeps: number[] = [];
      for (let sweep = 0; sweep < 10; sweep++) {
        const plan = planCases(engine, {
          probeBudget: budget,
          ...(cursor === undefined ? {} : { rotationCursor: cursor }),
        });
        expect(plan.coverage.rotated).toBeLessThanOrEqual(50);
        expect(plan.cases.length).toBeLessThanOrEqual(budget);
        for (const c of plan.cases) seen.add(c.caseId);
        sweeps.push(plan.coverage.sweepsPerRotation);
        cursor = plan.coverage.rotationCursor;
      }
      const full = planCases(engine, { probeBudget: Infinity });
      expect([...full.cases.map((c) => c.caseId)].filter((id) => !seen.has(id))).toEqual([]);
      const rest = full.coverage.cells - obligations.coverage.obligationCells;
      expect(sweeps[0]).toBe(Math.ceil(rest / 50));
    });

    it('probes the obligations alone with no budget', () => {
      const plan = planCases(engine, { probeBudget: 0 });
      expect(plan.coverage.rotated).toBe(0);
      expect(plan.cases.every((c) => c.reason !== 'rotation')).toBe(true);
      expect(plan.coverage.sweepsPerRotation).toBe(Infinity);
    });
  });

  it('takes a near miss only where the other side admits it, else says it is not verifiable', () => {
    // Every pod of namespace z may send nothing: an ingress near miss from z proves nothing.
    const cluster: Cluster = {
      namespaces: [
        { name: 'x', labels: {} },
        { name: 'z', labels: {} },
      ],
      pods: [
        {
          namespace: 'x',
          name: 'web',
          labels: { app: 'web' },
          hostNetwork: false,
          ip: '10.0.0.1',
          ports: [{ port: 80, protocol: 'TCP' }],
        },
        {
          namespace: 'z',
          name: 'web',
          labels: { app: 'web' },
          hostNetwork: false,
          ip: '10.0.0.2',
          ports: [],
        },
        {
          namespace: 'z',
          name: 'other',
          labels: { app: 'other' },
          hostNetwork: false,
          ip: '10.0.0.3',
          ports: [],
        },
      ],
      policies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { namespace: 'x', name: 'web-from-web-in-x' },
          spec: {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
          },
        },
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { namespace: 'z', name: 'deny-egress' },
          spec: { podSelector: {}, policyTypes: ['Egress'] },
        },
      ],
    };
    const plan = planCases(new PolicyEngine(cluster), { probeBudget: 0 });
    expect(plan.cases.filter((c) => c.reason.startsWith('near-miss'))).toEqual([]);
    expect(plan.notGenerated.filter((n) => n.reason === 'near-miss-namespace')).toEqual([
      expect.objectContaining({
        why: expect.stringContaining('not verifiable') as unknown as string,
      }),
    ]);
  });

  it('expects what the reference evaluator says, for every case of random clusters (property)', () => {
    fc.assert(
      fc.property(randomCluster, (c) => {
        const reference = new ReferenceEvaluator(c);
        for (const planned of planCases(new PolicyEngine(c), { probeBudget: Infinity }).cases) {
          const [from, to] = [planned.source.pods[0]!, planned.destination.pods[0]!];
          const verdict = reference.verdict({
            from,
            to,
            port: planned.port,
            protocol: planned.protocol,
          });
          expect(planned.expected).toBe(verdict.allowed ? 'allow' : 'deny');
          expect(planned.source.hostNetwork || planned.destination.hostNetwork).toBe(false);
        }
      }),
      { seed: 20261127, numRuns: 300 },
    );
  });

  it('covers the conformance expectations with the whole matrix', () => {
    let covered = 0;
    let total = 0;
    for (const file of conformanceScenarioFiles()) {
      const scenario = loadScenarioFile(file);
      const engine = new PolicyEngine(scenario.cluster);
      const ids = new Set(planCases(engine, { probeBudget: Infinity }).cases.map((c) => c.caseId));
      for (const row of scenario.expectations) {
        total += 1;
        const from = engine.classOf(row.from)!;
        const to = engine.classOf(row.to)!;
        if (ids.has(caseIdOf(from.key, to.key, row.port, row.protocol))) covered += 1;
      }
    }
    expect(total).toBeGreaterThan(80);
    // The whole matrix holds every row on a declared port; the rest are ports no pod
    // declares, which the pipeline reports as not generated, with the reason.
    expect(covered / total).toBeGreaterThan(0.9);
  });
});

describe('planning with the cluster-scoped tiers', () => {
  const tenantIsolation = (): Cluster =>
    loadScenarioFile(join(repositoryRoot, 'examples', 'tiers', 'tenant-isolation-cnp.yaml'))
      .cluster;

  it('gives every rule of every ClusterNetworkPolicy a case where that rule decides or passes', () => {
    const c = tenantIsolation();
    const engine = new PolicyEngine(c);
    const plan = planCases(engine, { probeBudget: 0 });
    const tierCases = plan.cases.filter((p) => p.reason === 'tier-rule');
    const rules = engine.clusterPolicies.flatMap((p) =>
      p.rules.map((r) => `${p.key} ${r.direction}[${r.index}]`),
    );
    const checked = new Set(
      tierCases.map((p) => `${p.rule?.policy} ${p.rule?.direction}[${p.rule?.index}]`),
    );
    expect([...checked].sort()).toEqual([...rules].sort());
    // Each case shows its rule at work: the rule is on the deciding side's path.
    for (const planned of tierCases) {
      const side = planned.explanation[planned.rule!.direction];
      const path = [side.decidedBy, ...(side.passedBy ?? [])];
      expect(path.some((r) => r?.policy === planned.rule!.policy)).toBe(true);
    }
    // The Admin Deny of another tenant blocks what tenant-a's NetworkPolicy admits.
    const denied = tierCases.find(
      (p) => p.rule?.policy === 'ClusterNetworkPolicy/isolate-tenant-a' && p.rule.index === 1,
    );
    expect(denied?.expected).toBe('deny');
    expect(denied?.explanation.ingress.isolated).toBe(true);
  });

  it('probes near misses of cluster-scoped peers: a pod outside the namespaces a rule selects', () => {
    const engine = new PolicyEngine(tenantIsolation());
    const plan = planCases(engine, { probeBudget: 0 });
    const miss = plan.cases.find(
      (p) =>
        p.reason === 'near-miss-namespace' &&
        p.rule?.policy === 'ClusterNetworkPolicy/accept-monitoring',
    );
    expect(miss).toBeDefined();
    expect(miss!.source.namespace).not.toBe('monitoring');
    expect(miss!.destination.namespace).toMatch(/^tenant-/);
    // The DNS rule's pods peer has no pod of half a match: said so, not silently dropped.
    expect(plan.notGenerated).toContainEqual(
      expect.objectContaining({
        reason: 'near-miss-pods',
        rule: expect.objectContaining({ policy: 'ClusterNetworkPolicy/accept-dns' }) as unknown,
        why: "no running pod in a namespace the peer selects, without the peer's pod labels",
      }),
    );
  });

  it('expects what the reference evaluator says, for every case of random tiered clusters (property)', () => {
    fc.assert(
      fc.property(tieredCluster, (c) => {
        const reference = new ReferenceEvaluator(c);
        for (const planned of planCases(new PolicyEngine(c), { probeBudget: Infinity }).cases) {
          const [from, to] = [planned.source.pods[0]!, planned.destination.pods[0]!];
          const verdict = reference.verdict({
            from,
            to,
            port: planned.port,
            protocol: planned.protocol,
          });
          expect(verdict.ambiguous).toBeUndefined();
          expect(planned.expected).toBe(verdict.allowed ? 'allow' : 'deny');
        }
      }),
      { seed: 20261201, numRuns: 200 },
    );
  });

  it('never plans a connection that equal priorities leave to the implementation, and says why', () => {
    const c: Cluster = {
      ...tenantIsolation(),
      clusterPolicies: [
        ...(tenantIsolation().clusterPolicies ?? []),
        {
          apiVersion: 'policy.networking.k8s.io/v1alpha2',
          kind: 'ClusterNetworkPolicy',
          metadata: { name: 'clash' },
          spec: {
            tier: 'Admin',
            priority: 10,
            subject: { namespaces: { matchLabels: { tenant: 'a' } } },
            ingress: [
              { action: 'Deny', from: [{ namespaces: { matchLabels: { role: 'monitoring' } } }] },
            ],
          },
        },
      ],
    };
    const plan = planCases(new PolicyEngine(c), { probeBudget: Infinity });
    expect(
      plan.cases.some(
        (p) => p.source.namespace === 'monitoring' && p.destination.namespace === 'tenant-a',
      ),
    ).toBe(false);
    expect(plan.notGenerated).toContainEqual(
      expect.objectContaining({
        why: expect.stringContaining(
          'ambiguous (implementation-defined): Admin tier priority 10: ClusterNetworkPolicy/accept-monitoring Accepts, ClusterNetworkPolicy/clash Denys',
        ) as unknown as string,
      }),
    );
  });
});

describe('policies of kinds Lumen does not model', () => {
  it('reports every case a namespaced one may affect as not judged, naming it, and plans the rest', () => {
    const c = loadScenarioFile(
      join(repositoryRoot, 'examples', 'tiers', 'tenant-isolation-cnp.yaml'),
    ).cluster;
    const engine = new PolicyEngine(c);
    const unmodelled = [
      { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'tenant-b', name: 'l7' },
    ];
    const plan = planCases(engine, { probeBudget: Infinity, unmodelled });
    const touches = (p: PlannedCase) =>
      p.source.namespace === 'tenant-b' || p.destination.namespace === 'tenant-b';
    expect(plan.cases.filter(touches)).toEqual([]);
    expect(plan.cases.length).toBeGreaterThan(0);
    const all = planCases(engine, { probeBudget: Infinity });
    expect(plan.cases.length).toBe(all.cases.filter((p) => !touches(p)).length);
    expect(plan.notGenerated).toContainEqual(
      expect.objectContaining({
        why: 'not judged: CiliumNetworkPolicy tenant-b/l7 (cilium.io) may affect it, and Lumen does not model that kind',
      }),
    );
    // Cells wanted and left unjudged, each counted once however often it was wanted. (Which
    // cells the obligations want depends on what the plan already holds, so the number need
    // not be the full plan's count of cases in tenant-b; the rotation test in core.spec
    // pins it exactly.)
    expect(plan.notJudged).toEqual([{ policy: unmodelled[0], cases: plan.notJudgedCases }]);
    expect(plan.notJudgedCases).toBeGreaterThan(0);
    expect(plan.notJudgedCases).toBeLessThanOrEqual(
      plan.notGenerated.filter((n) => n.why.startsWith('not judged')).length,
    );
  });

  it('names every object, counts a case two objects share once in all, and lists one that affects nothing', () => {
    const c = loadScenarioFile(
      join(repositoryRoot, 'examples', 'tiers', 'tenant-isolation-cnp.yaml'),
    ).cluster;
    const engine = new PolicyEngine(c);
    const inB = {
      group: 'cilium.io',
      kind: 'CiliumNetworkPolicy',
      namespace: 'tenant-b',
      name: 'l7',
    };
    const alsoInB = {
      group: 'crd.projectcalico.org',
      kind: 'NetworkPolicy',
      namespace: 'tenant-b',
      name: 'calico-b',
    };
    const nowhere = {
      group: 'cilium.io',
      kind: 'CiliumNetworkPolicy',
      namespace: 'empty',
      name: 'idle',
    };
    const plan = planCases(engine, { probeBudget: Infinity, unmodelled: [inB, alsoInB, nowhere] });
    const kept = plan.notJudgedCases;
    expect(kept).toBeGreaterThan(0);
    expect(plan.notJudged).toEqual([
      { policy: inB, cases: kept },
      { policy: alsoInB, cases: kept },
      { policy: nowhere, cases: 0 },
    ]);
    expect(plan.notJudgedCases).toBe(kept);
    expect(plan.notGenerated).toContainEqual(
      expect.objectContaining({
        why: 'not judged: CiliumNetworkPolicy tenant-b/l7 (cilium.io) (and 1 more) may affect it, and Lumen does not model that kind',
      }),
    );
  });

  it('judges nothing while a cluster-wide one exists', () => {
    const engine = new PolicyEngine(
      recipe('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
    );
    const plan = planCases(engine, {
      probeBudget: Infinity,
      unmodelled: [
        { group: 'crd.projectcalico.org', kind: 'GlobalNetworkPolicy', name: 'deny-all' },
      ],
    });
    expect(plan.cases).toEqual([]);
    expect(plan.notGenerated.length).toBeGreaterThan(0);
    expect(plan.notJudged).toEqual([
      { policy: expect.objectContaining({ name: 'deny-all' }), cases: plan.notJudgedCases },
    ]);
    expect(plan.notJudgedCases).toBeGreaterThan(0);
  });
});
