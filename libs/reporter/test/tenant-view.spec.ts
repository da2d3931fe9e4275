import { describe, expect, it } from '@jest/globals';
import type { AttemptItem, CaseItem, OutcomeItem } from '#lumen/contracts';
import { visiblePolicy } from '#lumen/access';
import { attemptView, caseView, foreignEnds, outcomeView } from '../src/api/tenant-view.js';

const pod = (namespace: string, name: string, ip: string) => ({
  namespace,
  name,
  uid: `uid-${name}`,
  ip,
  node: `node-${namespace}`,
});
const side = (namespace: string, app: string, ip: string) => ({
  namespace,
  labels: { app },
  classKey: `${namespace}/${app}`,
  pods: [pod(namespace, `${app}-0`, ip)],
});
const explained = (policies: string[]) => ({
  isolated: true,
  policies,
  allowedBy: [{ policy: policies[0] ?? 'x/y', direction: 'ingress' as const, index: 0 }],
  allowed: true,
});

const caseItem: CaseItem = {
  caseId: 'e000000000000001',
  generation: 1,
  reason: 'must-allow',
  source: side('team-b', 'client', '10.0.2.2'),
  destination: side('team-a', 'web', '10.0.1.1'),
  port: 80,
  protocol: 'TCP',
  expected: 'allow',
  explanation: { egress: explained(['team-b/egress']), ingress: explained(['team-a/web']) },
  rule: { policy: 'team-a/web', direction: 'ingress', index: 0 },
  listenerKnown: true,
  traceparent: null,
  policy: 'team-a/web',
  changedAt: '2026-12-01T00:00:00.000Z',
};

const outcomeItem: OutcomeItem = {
  caseId: caseItem.caseId,
  outcome: 'fail',
  decidedAt: '2026-12-01T00:00:10.000Z',
  round: 1,
  attempts: 3,
  reason: 'expected reachable, observed blocked: dropped: filtered from 10.0.1.1 (fd00::1:2)',
  caseReason: 'must-allow',
  expected: 'allow',
  observed: 'blocked',
  source: caseItem.source,
  destination: caseItem.destination,
  port: 80,
  protocol: 'TCP',
  policy: 'team-a/web',
  rule: caseItem.rule,
  enforcementLatencyMs: null,
  traceId: null,
};

const attemptItem: AttemptItem = {
  id: 7,
  round: 1,
  attempt: 1,
  node: 'node-team-b',
  observedAt: '2026-12-01T00:00:05.000Z',
  reachability: 'blocked',
  basis: 'dropped: filtered (no-response) at 10.0.1.1',
  evidence: { state: 'filtered', reason: 'no-response', command: ['nmap', '10.0.1.1', '10.9.9.9'] },
  traceId: null,
  sourcePod: 'team-b/client-0',
  destinationPod: 'team-a/web-0',
};

describe('what a token limited to namespaces sees of a case', () => {
  it('is everything, unchanged, for an unlimited token', () => {
    expect(caseView(caseItem, undefined)).toBe(caseItem);
    expect(outcomeView(outcomeItem, undefined)).toBe(outcomeItem);
    expect(attemptView(attemptItem, undefined, { source: true, destination: true })).toBe(
      attemptItem,
    );
  });

  it('keeps only the namespace of the other end, and its side of the explanation unnamed', () => {
    const seen = caseView(caseItem, ['team-a']);
    expect(seen.source).toEqual({ namespace: 'team-b' });
    expect(seen.destination).toEqual(caseItem.destination);
    expect(seen.explanation.egress).toEqual({
      isolated: true,
      allowed: true,
      policies: [],
      allowedBy: [],
      hidden: true,
    });
    expect(seen.explanation.ingress).toEqual(caseItem.explanation.ingress);
    expect(seen.policy).toBe('team-a/web');
  });

  it('does not name the other tenant’s policy, nor the rule in it', () => {
    const seen = caseView(caseItem, ['team-b']);
    expect(seen.destination).toEqual({ namespace: 'team-a' });
    expect([seen.policy, seen.rule]).toEqual([null, null]);
    expect(JSON.stringify(seen)).not.toMatch(/team-a\/|web|10\.0\.1\.1|node-team-a/);
  });

  it('hides addresses in the outcome’s reason when an end is foreign', () => {
    expect(outcomeView(outcomeItem, ['team-b']).reason).toBe(
      'expected reachable, observed blocked: dropped: filtered from (address hidden) ((address hidden))',
    );
    const own = { ...outcomeItem, source: caseItem.destination };
    expect(outcomeView(own, ['team-a']).reason).toBe(outcomeItem.reason);
  });

  it.each([
    [{ source: false, destination: false }, 'node-team-b', 'team-b/client-0', 'team-a/web-0'],
    [{ source: true, destination: false }, null, null, 'team-a/web-0'],
    [{ source: false, destination: true }, 'node-team-b', 'team-b/client-0', null],
  ])(
    'shows an attempt with foreign ends %j: node %s, pods %s and %s, never the command line',
    (foreign, node, sourcePod, destinationPod) => {
      const seen = attemptView(attemptItem, ['team-a', 'team-b'], foreign);
      expect(seen).toMatchObject({ node, sourcePod, destinationPod });
      expect(seen.evidence).toEqual({ state: 'filtered', reason: 'no-response' });
      expect(attemptItem.evidence?.command).toHaveLength(3); // the stored item is untouched
    },
  );

  it.each([
    ['team-a/web', ['team-a'], true],
    ['team-a/web', ['team-b'], false],
    ['ClusterNetworkPolicy/tenant-isolation', ['team-b'], true],
    ['AdminNetworkPolicy/deny-all', ['team-b'], true],
    [undefined, ['team-b'], true],
    ['team-a/web', undefined, true],
  ])('names policy %s to scope %j: %s', (policy, scope, visible) => {
    expect(visiblePolicy(policy, scope)).toBe(visible);
  });

  it('knows which ends are foreign by their namespaces', () => {
    expect(foreignEnds({ source: 'a', destination: 'b' }, ['a'])).toEqual({
      source: false,
      destination: true,
    });
    expect(foreignEnds({ source: 'a', destination: 'b' }, undefined)).toEqual({
      source: false,
      destination: false,
    });
  });
});
