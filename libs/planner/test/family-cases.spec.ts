import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { PolicyEngine, clusterInFamily, type Cluster } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { repositoryRoot } from '#lumen/testing';
import { familyCases, planCases, type PlannedCase } from '#lumen/planner';

const dual = loadScenarioFile(
  join(repositoryRoot, 'examples', 'dual-stack', 'ipblock-per-family.yaml'),
);

const line = (c: PlannedCase): string =>
  `${c.source.pods[0]?.name}->${c.destination.pods[0]?.name}:${c.port} v${c.family ?? 4} ${c.expected}`;

function plan(cluster: Cluster, probeBudget = 100) {
  return planCases(new PolicyEngine(cluster), {
    probeBudget,
    families: [{ family: 6, engine: new PolicyEngine(clusterInFamily(cluster, 6)) }],
  });
}

describe('familyCases', () => {
  it('plans every pod-level case again over IPv6, with the expectation of that family', () => {
    const lines = plan(dual.cluster).cases.map(line);
    // The scenario's rows: the IPv4 ipBlock admits the client to web over IPv4 only.
    expect(lines).toEqual(
      expect.arrayContaining([
        'client->web:80 v4 allow',
        'client->web:80 v6 deny',
        'client->api:8080 v4 allow',
        'client->api:8080 v6 allow',
        'web->api:8080 v4 deny',
        'web->api:8080 v6 deny',
      ]),
    );
    // Every IPv6 case has an IPv4 one, and no IPv4 case lacks its twin.
    const v4 = lines.filter((l) => l.includes(' v4 ')).map((l) => l.replace(/ v4 \w+$/, ''));
    const v6 = lines.filter((l) => l.includes(' v6 ')).map((l) => l.replace(/ v6 \w+$/, ''));
    expect(new Set(v6)).toEqual(new Set(v4));
  });

  it('gives the IPv6 cases classes whose pods are at their IPv6 addresses, and ids of their own', () => {
    const { cases } = plan(dual.cluster);
    const v6 = cases.filter((c) => c.family === 6);
    expect(v6.length).toBeGreaterThan(0);
    for (const c of v6)
      for (const pod of [...c.source.pods, ...c.destination.pods]) expect(pod.ip).toMatch(/^fd00:/);
    expect(new Set(cases.map((c) => c.caseId)).size).toBe(cases.length);
  });

  it('plans nothing more for single-stack pods', () => {
    const single: Cluster = {
      ...dual.cluster,
      pods: dual.cluster.pods.map((pod) => ({
        namespace: pod.namespace,
        name: pod.name,
        labels: pod.labels,
        hostNetwork: pod.hostNetwork,
        ports: pod.ports,
        ...(pod.ip ? { ip: pod.ip } : {}),
      })),
    };
    expect(plan(single).cases.filter((c) => c.family)).toEqual([]);
  });

  it('leaves out a class whose pods an ipBlock tells apart over IPv6, said why', () => {
    const cluster: Cluster = {
      ...dual.cluster,
      pods: [
        ...dual.cluster.pods,
        // A second client of the same labels whose IPv6 address another block admits.
        {
          namespace: 'default',
          name: 'client-2',
          labels: { app: 'client' },
          hostNetwork: false,
          ports: [],
          ip: '10.10.1.5',
          ips: ['10.10.1.5', 'fd00:20::5'],
        },
      ],
      policies: [
        ...dual.cluster.policies,
        {
          metadata: { name: 'web-from-v6-block', namespace: 'default' },
          spec: {
            podSelector: { matchLabels: { app: 'web' } },
            ingress: [{ from: [{ ipBlock: { cidr: 'fd00:20::/64' } }] }],
          },
        },
      ],
    };
    const engine = new PolicyEngine(cluster);
    const sixes = new PolicyEngine(clusterInFamily(cluster, 6));
    const primary = planCases(engine, { probeBudget: 100 });
    const twins = familyCases(sixes, 6, primary.cases);
    expect(twins.notGenerated.map((n) => n.why)).toEqual(
      expect.arrayContaining([
        'over IPv6: ipBlocks tell the pods of the source class apart, so no one verdict can be expected of the class',
      ]),
    );
  });
});
