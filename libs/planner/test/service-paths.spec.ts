import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { join } from 'node:path';
import { PolicyEngine, type Cluster, type ServiceFrontend } from '#lumen/policy';
import { backendsOf, loadScenarioFile, type Scenario } from '#lumen/scenario';
import { repositoryRoot } from '#lumen/testing';
import { planCases, serviceCaseId, servicePathCases, type PlannedCase } from '#lumen/planner';

const example = (name: string): Scenario =>
  loadScenarioFile(join(repositoryRoot, 'examples', 'services', name));

/** The Services of a scenario as the watcher gives them: each port with its ready backends. */
function frontendsOf(
  scenario: Scenario,
  clusterIPs: Record<string, string> = {},
): ServiceFrontend[] {
  return scenario.services.flatMap((service) =>
    service.ports.map((port) => ({
      namespace: service.namespace,
      name: service.name,
      clusterIPs:
        service.clusterIPs.length > 0
          ? service.clusterIPs
          : [clusterIPs[`${service.namespace}/${service.name}`] ?? '10.96.0.99'],
      port: port.port,
      protocol: port.protocol,
      backends: (backendsOf(service, port.port, port.protocol, scenario.cluster.pods) ?? []).map(
        (b) => ({ pod: { namespace: b.pod.namespace, name: b.pod.name }, port: b.port }),
      ),
    })),
  );
}

const describeCase = (c: PlannedCase): string =>
  `${c.source.pods[0]?.name} -> ${c.via ? `svc ${c.via.name} ${c.via.clusterIP}:${c.via.port}` : `${c.destination.pods[0]?.name}:${c.port}`} ${c.expected}`;

describe('servicePathCases', () => {
  const seed = example('seed-access-nginx-service.yaml');

  it('plans the seed walk-through through the nginx Service with the pod-level expectations', () => {
    const engine = new PolicyEngine(seed.cluster);
    const plan = planCases(engine, { probeBudget: 0, services: frontendsOf(seed) });
    const paths = plan.cases.filter((c) => c.via);
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) {
      const pod = plan.cases.find((c) => c.caseId === path.via?.podCaseId);
      expect(pod).toBeDefined();
      expect(path).toMatchObject({
        expected: pod?.expected,
        reason: pod?.reason,
        port: pod?.port,
        protocol: 'TCP',
        source: pod?.source,
        destination: pod?.destination,
        explanation: pod?.explanation,
        via: { namespace: 'default', name: 'nginx', clusterIP: '10.96.0.10', port: 80 },
      });
      expect(path.caseId).not.toBe(pod?.caseId);
    }
    const lines = paths.map(describeCase);
    expect(lines).toContain('busybox-access -> svc nginx 10.96.0.10:80 allow');
    expect(lines).toContain('busybox -> svc nginx 10.96.0.10:80 deny');
  });

  it('marks a source that backs the Service as a hairpin, and no other', () => {
    const hairpin = example('hairpin.yaml');
    const engine = new PolicyEngine(hairpin.cluster);
    // No policy: the default-allow cells come from the probe budget's rotation.
    const plan = planCases(engine, { probeBudget: 100, services: frontendsOf(hairpin) });
    const paths = plan.cases.filter((c) => c.via);
    expect(paths.map((c) => [c.source.pods[0]?.name, c.via?.hairpin])).toEqual(
      expect.arrayContaining([
        ['echo', true],
        ['client', false],
      ]),
    );
    for (const path of paths)
      expect(path.via?.hairpin).toBe(path.source.key === path.destination.key);
  });

  it('leaves out, said why, a path whose backends the policies decide differently', () => {
    // One Service over both the allowed pods and a pod no policy isolates alike.
    const cluster: Cluster = {
      ...seed.cluster,
      pods: [
        ...seed.cluster.pods,
        {
          namespace: 'default',
          name: 'nginx-canary',
          labels: { run: 'nginx-canary', web: 'yes' },
          hostNetwork: false,
          ip: '10.0.9.9',
          ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
        },
      ],
    };
    const engine = new PolicyEngine(cluster);
    const base = frontendsOf(seed)[0]!;
    const frontend: ServiceFrontend = {
      ...base,
      backends: [
        ...base.backends,
        { pod: { namespace: 'default', name: 'nginx-canary' }, port: 80 },
      ],
    };
    const plan = planCases(engine, { probeBudget: 0, services: [frontend] });
    const denied = plan.cases.filter(
      (c) => c.via && c.source.pods[0]?.name === 'busybox' && c.expected === 'deny',
    );
    expect(denied).toEqual([]);
    expect(plan.notGenerated.map((n) => n.why)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^through Service default\/nginx port 80: its backends are not all denied \(default\/.*run=nginx-canary.* on 80\)/,
        ),
      ]),
    );
  });

  it('leaves out a path with a backend Lumen does not model', () => {
    const engine = new PolicyEngine(seed.cluster);
    const base = frontendsOf(seed)[0]!;
    const frontend = {
      ...base,
      backends: [...base.backends, { pod: { namespace: 'default', name: 'gone' }, port: 80 }],
    };
    const plan = planCases(engine, { probeBudget: 0, services: [frontend] });
    expect(plan.cases.filter((c) => c.via)).toEqual([]);
    expect(plan.notGenerated.map((n) => n.why)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('some of its backends are pods Lumen does not model'),
      ]),
    );
  });

  it.each([
    ['a UDP Service port', { protocol: 'UDP' as const }],
    ['another port than the case', { port: 8080, backendPort: 8080 }],
  ])('plans nothing through %s', (_, change) => {
    const engine = new PolicyEngine(seed.cluster);
    const base = frontendsOf(seed)[0]!;
    const frontend: ServiceFrontend = {
      ...base,
      ...('protocol' in change ? { protocol: change.protocol } : {}),
      backends: base.backends.map((b) => ({
        ...b,
        port: 'backendPort' in change ? change.backendPort : b.port,
      })),
    };
    const plan = planCases(engine, { probeBudget: 0, services: [frontend] });
    expect(plan.cases.filter((c) => c.via && !c.via.hairpin)).toEqual([]);
  });

  it('plans each backend reaching itself through its Service, with its pod-to-itself case', () => {
    const engine = new PolicyEngine(seed.cluster);
    const plan = planCases(engine, { probeBudget: 0, services: frontendsOf(seed) });
    const hairpins = plan.cases.filter((c) => c.via?.hairpin);
    // nginx-1 and nginx-2 are one class: one hairpin, denied as access-nginx denies nginx itself.
    expect(hairpins.map(describeCase)).toEqual(['nginx-1 -> svc nginx 10.96.0.10:80 deny']);
    const self = plan.cases.find((c) => c.caseId === hairpins[0]?.via?.podCaseId);
    expect(self).toMatchObject({ reason: 'hairpin', expected: 'deny', port: 80, loopback: false });
    expect(self?.via).toBeUndefined();
    expect(self?.source.key).toBe(self?.destination.key);
    expect(new Set(plan.cases.map((c) => c.caseId)).size).toBe(plan.cases.length);
  });

  it('twins nothing twice: a path is never planned through a path', () => {
    const engine = new PolicyEngine(seed.cluster);
    const plan = planCases(engine, { probeBudget: 0, services: frontendsOf(seed) });
    const again = servicePathCases(engine, plan.cases, frontendsOf(seed));
    const twins = plan.cases.filter((c) => c.via).map((c) => c.caseId);
    expect(again.cases.map((c) => c.caseId).sort()).toEqual(twins.sort());
  });

  it('probes the ClusterIP of the destination pods’ family on a dual-stack Service', () => {
    const addressed: Cluster = {
      ...seed.cluster,
      pods: seed.cluster.pods.map((pod, i) => ({
        ...pod,
        ip: `10.0.0.${i + 1}`,
        ips: [`10.0.0.${i + 1}`, `fd00::${i + 1}`],
      })),
    };
    const engine = new PolicyEngine(addressed);
    const base = frontendsOf(seed)[0]!;
    const frontend = { ...base, clusterIPs: ['fd00:10:96::a', '10.96.0.10'] };
    const plan = planCases(engine, { probeBudget: 0, services: [frontend] });
    const clusterIPs = new Set(plan.cases.flatMap((c) => (c.via ? [c.via.clusterIP] : [])));
    expect(clusterIPs).toEqual(new Set(['10.96.0.10']));
  });
});

describe('serviceCaseId', () => {
  it('is stable, and differs by pod case, Service and port', () => {
    const frontend = (name: string, port: number): ServiceFrontend => ({
      namespace: 'default',
      name,
      clusterIPs: ['10.96.0.1'],
      port,
      protocol: 'TCP',
      backends: [],
    });
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
        fc.integer({ min: 1, max: 65535 }),
        (a, b, name, port) => {
          const id = serviceCaseId(a, frontend(name, port));
          expect(id).toMatch(/^[0-9a-f]{16}$/);
          expect(serviceCaseId(a, frontend(name, port))).toBe(id);
          expect(id).not.toBe(a);
          if (a !== b) expect(serviceCaseId(b, frontend(name, port))).not.toBe(id);
          expect(serviceCaseId(a, frontend(name, (port % 65535) + 1))).not.toBe(id);
          expect(serviceCaseId(a, frontend(`${name}x`, port))).not.toBe(id);
        },
      ),
    );
  });
});
