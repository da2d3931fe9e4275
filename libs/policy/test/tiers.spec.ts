/**
 * The cluster-scoped tiers, one row per rule of the v1alpha2 API documentation
 * (kubernetes-sigs/network-policy-api, apis/v1alpha2/clusternetworkpolicy_types.go), each
 * expectation worked out by hand from that text. Both evaluators answer every row.
 */
import { describe, expect, it } from '@jest/globals';
import {
  PolicyEngine,
  ReferenceEvaluator,
  describeVerdict,
  type Cluster,
  type ClusterPolicyManifest,
  type Protocol,
  type Verdict,
} from '#lumen/policy';
import { cluster, pod, policy } from './fixtures.js';

function cnp(name: string, spec: Record<string, unknown>): ClusterPolicyManifest {
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name },
    spec,
  };
}

const everyNamespace = { namespaces: {} };
const admin = (priority: number, extra: Record<string, unknown>) => ({
  tier: 'Admin',
  priority,
  subject: everyNamespace,
  ...extra,
});
const baseline = (priority: number, extra: Record<string, unknown>) => ({
  tier: 'Baseline',
  priority,
  subject: everyNamespace,
  ...extra,
});
const fromAll = (action: string, extra: Record<string, unknown> = {}) => ({
  action,
  from: [everyNamespace],
  ...extra,
});
const toAll = (action: string, extra: Record<string, unknown> = {}) => ({
  action,
  to: [everyNamespace],
  ...extra,
});

const server = pod(
  'a/server',
  { app: 'server' },
  {
    ip: '10.0.1.2',
    ports: [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  },
);
const client = pod('b/client', { app: 'client' }, { ip: '10.0.2.2' });
const hostAgent = pod('b/agent', { app: 'agent' }, { ip: '10.0.9.9', hostNetwork: true });
const pods = [server, client, hostAgent];
const namespaceLabels = { a: { team: 'a' }, b: { team: 'b' } };

function tiered(
  clusterPolicies: ClusterPolicyManifest[],
  networkPolicies: ReturnType<typeof policy>[] = [],
): Cluster {
  return { ...cluster(pods, networkPolicies, namespaceLabels), clusterPolicies };
}

function ask(c: Cluster, from: string, to: string, port = 80, protocol: Protocol = 'TCP'): Verdict {
  const ref = (text: string) => {
    const [namespace = '', name = ''] = text.split('/');
    return { namespace, name };
  };
  const connection = { from: ref(from), to: ref(to), port, protocol };
  const engine = new PolicyEngine(c);
  expect(engine.errors).toEqual([]);
  const compiled = engine.verdict(connection);
  expect(new ReferenceEvaluator(c).verdict(connection)).toEqual(compiled);
  return compiled;
}

const serverDeniesAll = policy('a/deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
const serverAdmitsAll = policy('a/admit-all', { podSelector: {}, ingress: [{}] });

interface Row {
  readonly rule: string;
  readonly cluster: Cluster;
  readonly from?: string;
  readonly to?: string;
  readonly port?: number;
  readonly protocol?: Protocol;
  readonly allowed: boolean;
  /** The tier that decided the ingress side (or egress, with `side`). */
  readonly tier?: string;
  readonly side?: 'egress' | 'ingress';
}

describe('the Admin, NetworkPolicy and Baseline tiers (v1alpha2)', () => {
  const rows: Row[] = [
    {
      rule: 'Admin Accept is final: a NetworkPolicy that isolates the pod is not asked',
      cluster: tiered([cnp('acc', admin(10, { ingress: [fromAll('Accept')] }))], [serverDeniesAll]),
      allowed: true,
      tier: 'Admin',
    },
    {
      rule: 'Admin Deny is final: a NetworkPolicy that admits is not asked',
      cluster: tiered([cnp('deny', admin(10, { ingress: [fromAll('Deny')] }))], [serverAdmitsAll]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'Admin Pass hands the decision to the NetworkPolicies',
      cluster: tiered([cnp('pass', admin(10, { ingress: [fromAll('Pass')] }))], [serverDeniesAll]),
      allowed: false,
      tier: 'NetworkPolicy',
    },
    {
      rule: 'Pass skips the rest of the Admin tier, lower priorities included',
      cluster: tiered([
        cnp('pass', admin(10, { ingress: [fromAll('Pass')] })),
        cnp('deny', admin(20, { ingress: [fromAll('Deny')] })),
      ]),
      allowed: true,
      tier: 'default',
    },
    {
      rule: 'Pass skips the rest of its own policy: a later Accept rule is not reached',
      cluster: tiered(
        [cnp('pass', admin(10, { ingress: [fromAll('Pass'), fromAll('Accept')] }))],
        [serverDeniesAll],
      ),
      allowed: false,
      tier: 'NetworkPolicy',
    },
    {
      rule: 'a NetworkPolicy that selects the pod is final: the Baseline tier is not asked',
      cluster: tiered(
        [cnp('base', baseline(10, { ingress: [fromAll('Deny')] }))],
        [serverAdmitsAll],
      ),
      allowed: true,
      tier: 'NetworkPolicy',
    },
    {
      rule: 'the Baseline tier decides where no NetworkPolicy selects the pod',
      cluster: tiered([cnp('base', baseline(10, { ingress: [fromAll('Deny')] }))]),
      allowed: false,
      tier: 'Baseline',
    },
    {
      rule: 'Baseline Pass leaves the Baseline tier: default allow',
      cluster: tiered([
        cnp('pass', baseline(10, { ingress: [fromAll('Pass')] })),
        cnp('deny', baseline(20, { ingress: [fromAll('Deny')] })),
      ]),
      allowed: true,
      tier: 'default',
    },
    {
      rule: 'lower priority numbers win inside a tier',
      cluster: tiered([
        cnp('late-accept', admin(500, { ingress: [fromAll('Accept')] })),
        cnp('early-deny', admin(5, { ingress: [fromAll('Deny')] })),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'the Admin tier comes before the Baseline tier whatever the priorities',
      cluster: tiered([
        cnp('admin', admin(1000, { ingress: [fromAll('Accept')] })),
        cnp('base', baseline(0, { ingress: [fromAll('Deny')] })),
      ]),
      allowed: true,
      tier: 'Admin',
    },
    {
      rule: 'inside a policy the first matching rule wins',
      cluster: tiered([cnp('p', admin(10, { ingress: [fromAll('Deny'), fromAll('Accept')] }))]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'a rule whose peers do not match is skipped',
      cluster: tiered([
        cnp(
          'p',
          admin(10, {
            ingress: [
              { action: 'Accept', from: [{ namespaces: { matchLabels: { team: 'a' } } }] },
              fromAll('Deny'),
            ],
          }),
        ),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'a policy with no rule matching the connection leaves it to the next policy',
      cluster: tiered([
        cnp(
          'other-port',
          admin(1, {
            ingress: [
              fromAll('Deny', { protocols: [{ tcp: { destinationPort: { number: 443 } } }] }),
            ],
          }),
        ),
        cnp('accept', admin(2, { ingress: [fromAll('Accept')] })),
      ]),
      allowed: true,
      tier: 'Admin',
    },
    {
      rule: 'a policy with egress rules only does not affect ingress',
      cluster: tiered([cnp('egress-only', admin(1, { egress: [toAll('Deny')] }))]),
      from: 'a/server',
      to: 'b/client',
      allowed: false,
      tier: 'Admin',
      side: 'egress',
    },
    {
      rule: 'both ends must agree: an egress Accept at the source does not override an ingress Deny at the destination',
      cluster: tiered([
        cnp('egress-accept', {
          ...admin(1, { egress: [toAll('Accept')] }),
          subject: { namespaces: { matchLabels: { team: 'b' } } },
        }),
        cnp('ingress-deny', {
          ...admin(2, { ingress: [fromAll('Deny')] }),
          subject: { namespaces: { matchLabels: { team: 'a' } } },
        }),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'both ends must agree: an egress Deny at the source blocks what the destination accepts',
      cluster: tiered([
        cnp('egress-deny', {
          ...admin(1, { egress: [toAll('Deny')] }),
          subject: { namespaces: { matchLabels: { team: 'b' } } },
        }),
        cnp('ingress-accept', {
          ...admin(2, { ingress: [fromAll('Accept')] }),
          subject: { namespaces: { matchLabels: { team: 'a' } } },
        }),
      ]),
      allowed: false,
      tier: 'Admin',
      side: 'egress',
    },
    {
      rule: 'subject pods: namespace AND pod selector',
      cluster: tiered([
        cnp('pods', {
          tier: 'Admin',
          priority: 1,
          subject: {
            pods: {
              namespaceSelector: { matchLabels: { team: 'a' } },
              podSelector: { matchLabels: { app: 'other' } },
            },
          },
          ingress: [fromAll('Deny')],
        }),
      ]),
      allowed: true,
    },
    {
      rule: 'peer pods: namespace AND pod selector',
      cluster: tiered([
        cnp(
          'p',
          admin(1, {
            ingress: [
              {
                action: 'Deny',
                from: [
                  {
                    pods: {
                      namespaceSelector: { matchLabels: { team: 'b' } },
                      podSelector: { matchLabels: { app: 'client' } },
                    },
                  },
                ],
              },
            ],
          }),
        ),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'peer pods with an empty namespaceSelector: every namespace',
      cluster: tiered([
        cnp(
          'p',
          admin(1, {
            ingress: [
              {
                action: 'Deny',
                from: [{ pods: { podSelector: { matchLabels: { app: 'client' } } } }],
              },
            ],
          }),
        ),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'networks match pod IPs too',
      cluster: tiered([
        cnp('cidr', {
          ...admin(1, { egress: [{ action: 'Deny', to: [{ networks: ['10.0.1.0/24'] }] }] }),
          subject: { namespaces: { matchLabels: { team: 'b' } } },
        }),
      ]),
      allowed: false,
      tier: 'Admin',
      side: 'egress',
    },
    {
      rule: 'networks that do not hold the pod IP do not match',
      cluster: tiered([
        cnp(
          'cidr',
          admin(1, {
            egress: [{ action: 'Deny', to: [{ networks: ['10.0.7.0/24', 'fd00::/64'] }] }],
          }),
        ),
      ]),
      allowed: true,
      tier: 'default',
      side: 'egress',
    },
    {
      rule: 'nodes and domainNames peers match no pod',
      cluster: tiered([
        cnp(
          'other-peers',
          admin(1, {
            egress: [
              { action: 'Deny', to: [{ nodes: {} }] },
              { action: 'Accept', to: [{ domainNames: ['example.com'] }] },
            ],
          }),
        ),
      ]),
      allowed: true,
      tier: 'default',
      side: 'egress',
    },
    {
      rule: 'protocols: a port range is inclusive',
      cluster: tiered([
        cnp(
          'range',
          admin(1, {
            ingress: [
              fromAll('Deny', {
                protocols: [{ tcp: { destinationPort: { range: { start: 70, end: 80 } } } }],
              }),
            ],
          }),
        ),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'protocols: a TCP port does not match UDP',
      cluster: tiered([
        cnp(
          'tcp',
          admin(1, {
            ingress: [
              fromAll('Deny', { protocols: [{ tcp: { destinationPort: { number: 53 } } }] }),
            ],
          }),
        ),
      ]),
      port: 53,
      protocol: 'UDP',
      allowed: true,
      tier: 'default',
    },
    {
      rule: 'protocols: destinationNamedPort resolves on the destination pod (dns is 53/UDP)',
      cluster: tiered([
        cnp(
          'named',
          admin(1, {
            ingress: [fromAll('Deny', { protocols: [{ destinationNamedPort: 'dns' }] })],
          }),
        ),
      ]),
      port: 53,
      protocol: 'UDP',
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'protocols: destinationNamedPort does not match another port of the pod',
      cluster: tiered([
        cnp(
          'named',
          admin(1, {
            ingress: [fromAll('Deny', { protocols: [{ destinationNamedPort: 'dns' }] })],
          }),
        ),
      ]),
      allowed: true,
      tier: 'default',
    },
    {
      rule: 'fail closed: an Accept rule with a peer of an unknown kind matches nothing',
      cluster: tiered([
        cnp(
          'future',
          admin(1, { ingress: [{ action: 'Accept', from: [everyNamespace, { futurePeer: {} }] }] }),
        ),
        cnp('deny', admin(2, { ingress: [fromAll('Deny')] })),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'fail closed: a Pass rule with a peer of an unknown kind denies all traffic',
      cluster: tiered([
        cnp(
          'future',
          admin(1, {
            ingress: [
              {
                action: 'Pass',
                from: [{}],
                protocols: [{ tcp: { destinationPort: { number: 443 } } }],
              },
            ],
          }),
        ),
      ]),
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'a hostNetwork pod is never a subject',
      cluster: tiered([cnp('egress-deny', admin(1, { egress: [toAll('Deny')] }))]),
      from: 'b/agent',
      to: 'a/server',
      allowed: true,
      side: 'egress',
    },
    {
      rule: 'a hostNetwork pod is never a namespaces peer',
      cluster: tiered([cnp('deny', admin(1, { ingress: [fromAll('Deny')] }))]),
      from: 'b/agent',
      to: 'a/server',
      allowed: true,
      tier: 'default',
    },
  ];

  it.each(rows)('$rule', (row) => {
    const verdict = ask(
      row.cluster,
      row.from ?? 'b/client',
      row.to ?? 'a/server',
      row.port,
      row.protocol,
    );
    expect(verdict.allowed).toBe(row.allowed);
    expect(verdict.ambiguous).toBeUndefined();
    const side = verdict.explanation[row.side ?? 'ingress'];
    expect(side.tier).toBe(row.tier);
  });

  it('names the tier, policy, priority, rule and action that decided each side', () => {
    const c = tiered([
      cnp(
        'pass-same',
        admin(10, {
          ingress: [
            {
              name: 'from-b',
              action: 'Pass',
              from: [{ namespaces: { matchLabels: { team: 'b' } } }],
            },
          ],
        }),
      ),
      cnp(
        'base',
        baseline(7, { ingress: [{ name: 'deny-rest', action: 'Deny', from: [everyNamespace] }] }),
      ),
    ]);
    const verdict = ask(c, 'b/client', 'a/server');
    expect(verdict.explanation.ingress).toMatchObject({
      allowed: false,
      tier: 'Baseline',
      decidedBy: {
        tier: 'Baseline',
        policy: 'ClusterNetworkPolicy/base',
        priority: 7,
        direction: 'ingress',
        index: 0,
        name: 'deny-rest',
        action: 'Deny',
      },
      passedBy: [
        {
          tier: 'Admin',
          policy: 'ClusterNetworkPolicy/pass-same',
          priority: 10,
          name: 'from-b',
          action: 'Pass',
        },
      ],
    });
    expect(describeVerdict(verdict)).toBe(
      'egress: not isolated; ingress: passed by Admin tier ClusterNetworkPolicy/pass-same (priority 10) ingress[0] "from-b": Pass; denied by Baseline tier ClusterNetworkPolicy/base (priority 7) ingress[0] "deny-rest": Deny',
    );
  });
});

describe('equal priorities in one tier', () => {
  it('is ambiguous when overlapping policies decide differently', () => {
    const c = tiered([
      cnp('x-accept', admin(10, { ingress: [fromAll('Accept')] })),
      cnp('y-deny', admin(10, { ingress: [fromAll('Deny')] })),
    ]);
    const verdict = ask(c, 'b/client', 'a/server');
    expect(verdict.ambiguous).toBe(
      'Admin tier priority 10: ClusterNetworkPolicy/x-accept Accepts, ClusterNetworkPolicy/y-deny Denys',
    );
    expect(verdict.explanation.ingress.ambiguous).toBeDefined();
  });

  it('is not ambiguous when every way gives the same answer', () => {
    const c = tiered([
      cnp('x-accept', admin(10, { ingress: [fromAll('Accept')] })),
      cnp('y-pass', admin(10, { ingress: [fromAll('Pass')] })),
    ]);
    // Pass leads to no NetworkPolicy, no Baseline: default allow, as Accept does.
    expect(ask(c, 'b/client', 'a/server').ambiguous).toBeUndefined();
  });

  it('is not ambiguous when the other side denies anyway', () => {
    const c = tiered([
      cnp('x-accept', admin(10, { ingress: [fromAll('Accept')] })),
      cnp('y-deny', admin(10, { ingress: [fromAll('Deny')] })),
      cnp('egress', {
        ...admin(1, { egress: [toAll('Deny')] }),
        subject: { namespaces: { matchLabels: { team: 'b' } } },
      }),
    ]);
    const verdict = ask(c, 'b/client', 'a/server');
    expect(verdict.allowed).toBe(false);
    expect(verdict.ambiguous).toBeUndefined();
    expect(verdict.explanation.ingress.ambiguous).toBeDefined();
  });
});

describe('v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy', () => {
  const anp = (name: string, spec: Record<string, unknown>): ClusterPolicyManifest => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec,
  });
  const banp = (spec: Record<string, unknown>): ClusterPolicyManifest => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'BaselineAdminNetworkPolicy',
    metadata: { name: 'default' },
    spec,
  });

  it.each([
    {
      rule: 'Allow is Accept: final in the Admin tier',
      policies: [
        anp('allow', { priority: 1, subject: everyNamespace, ingress: [fromAll('Allow')] }),
      ],
      networkPolicies: [serverDeniesAll],
      allowed: true,
      tier: 'Admin',
    },
    {
      rule: 'portNumber matches its protocol and port',
      policies: [
        anp('deny-80', {
          priority: 1,
          subject: everyNamespace,
          ingress: [fromAll('Deny', { ports: [{ portNumber: { protocol: 'TCP', port: 80 } }] })],
        }),
      ],
      networkPolicies: [],
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'namedPort resolves on the destination pod',
      policies: [
        anp('deny-http', {
          priority: 1,
          subject: everyNamespace,
          ingress: [fromAll('Deny', { ports: [{ namedPort: 'http' }] })],
        }),
      ],
      networkPolicies: [],
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'portRange is inclusive',
      policies: [
        anp('deny-range', {
          priority: 1,
          subject: everyNamespace,
          ingress: [
            fromAll('Deny', { ports: [{ portRange: { protocol: 'TCP', start: 80, end: 90 } }] }),
          ],
        }),
      ],
      networkPolicies: [],
      allowed: false,
      tier: 'Admin',
    },
    {
      rule: 'the BaselineAdminNetworkPolicy sits in the Baseline tier',
      policies: [banp({ subject: everyNamespace, ingress: [fromAll('Deny')] })],
      networkPolicies: [serverAdmitsAll],
      allowed: true,
      tier: 'NetworkPolicy',
    },
    {
      rule: 'the BaselineAdminNetworkPolicy decides for unselected pods',
      policies: [banp({ subject: everyNamespace, ingress: [fromAll('Deny')] })],
      networkPolicies: [],
      allowed: false,
      tier: 'Baseline',
    },
    {
      rule: 'v1alpha1 and v1alpha2 share the Admin tier, by priority',
      policies: [
        anp('anp-accept', { priority: 3, subject: everyNamespace, ingress: [fromAll('Allow')] }),
        cnp('cnp-deny', admin(2, { ingress: [fromAll('Deny')] })),
      ],
      networkPolicies: [],
      allowed: false,
      tier: 'Admin',
    },
  ])('$rule', ({ policies, networkPolicies, allowed, tier }) => {
    const verdict = ask(tiered(policies, networkPolicies), 'b/client', 'a/server');
    expect(verdict.allowed).toBe(allowed);
    expect(verdict.explanation.ingress.tier).toBe(tier);
  });
});
