/**
 * Cases through Services, end to end in the lab (issue 19): the planner watches the lab's
 * Services and EndpointSlices, plans each connection to a backend also through the
 * Service's ClusterIP, the prober probes it there with real nmap through the lab's
 * kube-proxy stand-in, and the reporter tells a failure only through the Service apart.
 */
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { repositoryRoot } from '#lumen/testing';
import type { CaseReport } from '../src/pipeline/report.js';
import { judgeOnceInTheLab } from './lab-run.js';

const seed = join(repositoryRoot, 'examples', 'services', 'seed-access-nginx-service.yaml');
const hairpin = join(repositoryRoot, 'examples', 'services', 'hairpin.yaml');
const judged = judgeOnceInTheLab('lumen-svc-e2e');
const run = async (file: string, name: string, faults: readonly string[]): Promise<CaseReport[]> =>
  (await judged(name, file, faults)).cases;

const line = (c: CaseReport): string =>
  `${c.from.pod} -> ${c.service ? `svc ${c.service.name}${c.service.hairpin ? ' hairpin' : ''}` : c.to.pod}:${c.service?.port ?? c.port} ${c.expected} ${c.outcome}`;

describe('cases through Services in the lab', () => {
  it('passes the seed walk-through pod to pod and through the nginx Service, hairpin included', async () => {
    const cases = await run(seed, 'svc-seed', []);
    const through = cases.filter((c) => c.service);
    expect(cases.filter((c) => c.outcome !== 'pass').map(line)).toEqual([]);
    expect(through.map((c) => `${c.from.labels.access ?? '-'} ${c.expected}`)).toEqual(
      expect.arrayContaining(['true allow', '- deny']),
    );
    expect(through.some((c) => c.service?.hairpin)).toBe(true);
    for (const c of through) {
      expect(c.service).toMatchObject({ namespace: 'default', name: 'nginx', port: 80 });
      expect(c.service?.clusterIP).toBe('10.96.0.10');
      expect(c.evidence).toContain('through Service default/nginx at 10.96.0.10:80');
    }
  });

  it('with service-bypass, fails exactly the denied connections through the Service, and says so', async () => {
    const cases = await run(seed, 'svc-bypass', ['service-bypass']);
    const failed = cases.filter((c) => c.outcome === 'fail');
    // The policies deny busybox, and nginx itself, through the Service: bypassed, they pass.
    expect(failed.filter((c) => !c.service?.hairpin).map(line)).toEqual([
      'busybox -> svc nginx:80 deny fail',
    ]);
    for (const c of failed) {
      expect(c).toMatchObject({ expected: 'deny', observed: 'reachable' });
      expect(c.service?.name).toBe('nginx');
      if (!c.service?.hairpin)
        expect(c.verdict).toBe(
          'allowed through Service default/nginx (10.96.0.10:80) but blocked pod-to-pod: policies are not applied to Service traffic',
        );
    }
    expect(cases.filter((c) => !c.service && c.outcome !== 'pass').map(line)).toEqual([]);
    expect(
      cases.filter((c) => c.service && c.expected === 'allow' && c.outcome !== 'pass').map(line),
    ).toEqual([]);
  });

  it('with hairpin-deny, fails the pod reaching itself through its Service and nothing else', async () => {
    const cases = await run(hairpin, 'svc-hairpin', ['hairpin-deny']);
    const failed = cases.filter((c) => c.outcome !== 'pass').map(line);
    expect(failed).toEqual(['echo -> svc echo hairpin:80 allow fail']);
    const broken = cases.find((c) => c.service?.hairpin)!;
    expect(broken.verdict).toMatch(
      /^blocked through Service default\/echo \(10\.96\.\d+\.\d+:80\) but allowed pod-to-pod: the CNI mishandles Service traffic \(hairpin, /,
    );
    expect(cases.some((c) => !c.service && c.from.pod === 'echo' && c.to.pod === 'echo')).toBe(
      true,
    );
  });
});
