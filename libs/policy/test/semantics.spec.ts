import { describe, expect, it } from '@jest/globals';
import {
  HOST_NETWORK_DESTINATION,
  HOST_NETWORK_SOURCE,
  PolicyEngine,
  ReferenceEvaluator,
  type Cluster,
  type Protocol,
  type Verdict,
} from '#lumen/policy';
import { cluster, pod, policy } from './fixtures.js';

interface Row {
  readonly rule: string;
  readonly cluster: Cluster;
  readonly from: string;
  readonly to: string;
  readonly port?: number;
  readonly protocol?: Protocol;
  readonly allowed: boolean;
}

function ask(c: Cluster, from: string, to: string, port = 80, protocol: Protocol = 'TCP'): Verdict {
  const ref = (text: string): { namespace: string; name: string } => {
    const [namespace = '', name = ''] = text.split('/');
    return { namespace, name };
  };
  const connection = { from: ref(from), to: ref(to), port, protocol };
  const compiled = new PolicyEngine(c).verdict(connection);
  expect(new ReferenceEvaluator(c).verdict(connection)).toEqual(compiled);
  return compiled;
}

const web = pod(
  'default/web',
  { app: 'web' },
  { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
);
const client = pod('default/client', { run: 'client' });
const otherClient = pod('other/client', { run: 'client' });
const selectWeb = { podSelector: { matchLabels: { app: 'web' } } };
const onlyFrom = (peer: object): Record<string, unknown> => ({
  ...selectWeb,
  ingress: [{ from: [peer] }],
});

const selectorRows: Row[] = [
  ...(
    [
      ['matchLabels that match', { matchLabels: { run: 'client' } }, true],
      ['matchLabels with another value', { matchLabels: { run: 'other' } }, false],
      [
        'In with the value',
        { matchExpressions: [{ key: 'run', operator: 'In', values: ['x', 'client'] }] },
        true,
      ],
      [
        'In without the value',
        { matchExpressions: [{ key: 'run', operator: 'In', values: ['x'] }] },
        false,
      ],
      [
        'NotIn on another value',
        { matchExpressions: [{ key: 'run', operator: 'NotIn', values: ['x'] }] },
        true,
      ],
      [
        'NotIn on the value',
        { matchExpressions: [{ key: 'run', operator: 'NotIn', values: ['client'] }] },
        false,
      ],
      [
        'NotIn on an absent key',
        { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x'] }] },
        true,
      ],
      ['Exists on a present key', { matchExpressions: [{ key: 'run', operator: 'Exists' }] }, true],
      [
        'Exists on an absent key',
        { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
        false,
      ],
      [
        'DoesNotExist on an absent key',
        { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
        true,
      ],
      [
        'DoesNotExist on a present key',
        { matchExpressions: [{ key: 'run', operator: 'DoesNotExist' }] },
        false,
      ],
      ['the empty selector', {}, true],
      [
        'matchLabels AND matchExpressions, one failing',
        {
          matchLabels: { run: 'client' },
          matchExpressions: [{ key: 'run', operator: 'NotIn', values: ['client'] }],
        },
        false,
      ],
    ] as const
  ).map(([rule, podSelector, allowed]) => ({
    rule: `podSelector peer: ${rule}`,
    cluster: cluster([web, client], [policy('default/p', onlyFrom({ podSelector }))]),
    from: 'default/client',
    to: 'default/web',
    allowed,
  })),
];

const peerRows: Row[] = [
  {
    rule: 'a podSelector-only peer matches only the policy namespace',
    cluster: cluster(
      [web, otherClient],
      [policy('default/p', onlyFrom({ podSelector: { matchLabels: { run: 'client' } } }))],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'an empty namespaceSelector matches every namespace',
    cluster: cluster(
      [web, otherClient],
      [policy('default/p', onlyFrom({ namespaceSelector: {} }))],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'a namespaceSelector without podSelector matches every pod there',
    cluster: cluster(
      [web, otherClient],
      [policy('default/p', onlyFrom({ namespaceSelector: { matchLabels: { team: 'ops' } } }))],
      { other: { team: 'ops' } },
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'namespaceSelector AND podSelector in one peer: pod labels wrong',
    cluster: cluster(
      [web, otherClient],
      [
        policy(
          'default/p',
          onlyFrom({ namespaceSelector: {}, podSelector: { matchLabels: { run: 'x' } } }),
        ),
      ],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'namespaceSelector AND podSelector in one peer: namespace wrong',
    cluster: cluster(
      [web, otherClient],
      [
        policy(
          'default/p',
          onlyFrom({
            namespaceSelector: { matchLabels: { team: 'ops' } },
            podSelector: { matchLabels: { run: 'client' } },
          }),
        ),
      ],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'two peers are ORed',
    cluster: cluster(
      [web, otherClient],
      [
        policy('default/p', {
          ...selectWeb,
          ingress: [
            {
              from: [
                { podSelector: { matchLabels: { run: 'x' } } },
                { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'other' } } },
              ],
            },
          ],
        }),
      ],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'namespaces are matched by their automatic kubernetes.io/metadata.name label',
    cluster: cluster(
      [web, otherClient],
      [
        policy(
          'default/p',
          onlyFrom({
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'other' } },
          }),
        ),
      ],
    ),
    from: 'other/client',
    to: 'default/web',
    allowed: true,
  },
];

const ipBlockRows: Row[] = (
  [
    ['10.1.0.5', '10.1.0.0/16', [], true],
    ['10.2.0.5', '10.1.0.0/16', [], false],
    ['10.1.1.5', '10.1.0.0/16', ['10.1.1.0/24'], false],
    ['10.1.2.5', '10.1.0.0/16', ['10.1.1.0/24'], true],
    ['fd00::5', 'fd00::/64', [], true],
    ['fd00::85', 'fd00::/64', ['fd00::80/121'], false],
    ['fd00::5', '10.0.0.0/0', [], false],
    ['10.1.0.5', '::/0', [], false],
    ['10.1.0.5', '0.0.0.0/0', [], true],
  ] as const
).map(([ip, cidr, except, allowed]) => ({
  rule: `ipBlock ${cidr} except [${except.join(', ')}] against pod IP ${ip}`,
  cluster: cluster(
    [web, pod('other/client', { run: 'client' }, { ip })],
    [policy('default/p', onlyFrom({ ipBlock: { cidr, except } }))],
  ),
  from: 'other/client',
  to: 'default/web',
  allowed,
}));

const portsOf = (ports: object[]): Record<string, unknown> => ({
  ...selectWeb,
  ingress: [{ ports }],
});
const server = pod(
  'default/web',
  { app: 'web' },
  {
    ports: [
      { name: 'http', port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'sig', port: 3868, protocol: 'SCTP' },
    ],
  },
);
const portRows: Row[] = (
  [
    ['a numbered port', [{ port: 80 }], 80, 'TCP', true],
    ['a numbered port, protocol defaults to TCP', [{ port: 80 }], 80, 'UDP', false],
    ['another numbered port', [{ port: 80 }], 81, 'TCP', false],
    ['a named port on the destination', [{ port: 'http' }], 80, 'TCP', true],
    ['a named port with the wrong protocol', [{ port: 'dns', protocol: 'TCP' }], 53, 'TCP', false],
    ['a named UDP port', [{ port: 'dns', protocol: 'UDP' }], 53, 'UDP', true],
    ['a named port the destination lacks', [{ port: 'metrics' }], 80, 'TCP', false],
    ['endPort: low end', [{ port: 8000, endPort: 8080 }], 8000, 'TCP', true],
    ['endPort: high end', [{ port: 8000, endPort: 8080 }], 8080, 'TCP', true],
    ['endPort: just past', [{ port: 8000, endPort: 8080 }], 8081, 'TCP', false],
    ['endPort: other protocol', [{ port: 8000, endPort: 8080 }], 8042, 'UDP', false],
    ['protocol only: any port of it', [{ protocol: 'UDP' }], 9999, 'UDP', true],
    ['protocol only: not another protocol', [{ protocol: 'UDP' }], 9999, 'TCP', false],
    ['SCTP by number', [{ port: 3868, protocol: 'SCTP' }], 3868, 'SCTP', true],
    ['SCTP by name', [{ port: 'sig', protocol: 'SCTP' }], 3868, 'SCTP', true],
    ['no ports: every port and protocol', [], 4242, 'SCTP', true],
  ] as const
).map(([rule, ports, port, protocol, allowed]) => ({
  rule: `ports: ${rule}`,
  cluster: cluster([server, client], [policy('default/p', portsOf([...ports]))]),
  from: 'default/client',
  to: 'default/web',
  port,
  protocol,
  allowed,
}));

const egressClient = { podSelector: { matchLabels: { run: 'client' } } };
const typeRows: Row[] = [
  {
    rule: 'no policyTypes, egress rules present: egress is isolated',
    cluster: cluster(
      [web, client],
      [
        policy('default/p', {
          ...egressClient,
          egress: [{ ports: [{ port: 53, protocol: 'UDP' }] }],
        }),
      ],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'no policyTypes, egress: [] : egress is not isolated',
    cluster: cluster([web, client], [policy('default/p', { ...egressClient, egress: [] })]),
    from: 'default/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'policyTypes [Egress] with no egress rules denies all egress',
    cluster: cluster(
      [web, client],
      [policy('default/p', { ...egressClient, policyTypes: ['Egress'] })],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'policyTypes [Egress] ignores the ingress rules and isolates no ingress',
    cluster: cluster(
      [web, client],
      [policy('default/p', { ...selectWeb, policyTypes: ['Egress'], ingress: [] })],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'ingress: [] isolates and admits nothing',
    cluster: cluster([web, client], [policy('default/p', { ...selectWeb, ingress: [] })]),
    from: 'default/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'ingress: [{}] admits everything',
    cluster: cluster([web, client], [policy('default/p', { ...selectWeb, ingress: [{}] })]),
    from: 'default/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'policies add up: a second policy can admit what the first does not',
    cluster: cluster(
      [web, client],
      [
        policy('default/deny', { ...selectWeb, ingress: [] }),
        policy('default/allow', onlyFrom({ podSelector: {} })),
      ],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'ingress allowed but egress denied: denied',
    cluster: cluster(
      [web, client],
      [
        policy('default/out', { ...egressClient, policyTypes: ['Egress'] }),
        policy('default/in', { ...selectWeb, ingress: [{}] }),
      ],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'a pod to itself is subject to its policies (loopback)',
    cluster: cluster([web], [policy('default/p', { ...selectWeb, ingress: [] })]),
    from: 'default/web',
    to: 'default/web',
    allowed: false,
  },
  {
    rule: 'a policy selects pods of its own namespace only',
    cluster: cluster(
      [pod('other/web', { app: 'web' }), client],
      [policy('default/p', { ...selectWeb, ingress: [] })],
    ),
    from: 'default/client',
    to: 'other/web',
    allowed: true,
  },
  {
    rule: 'hostNetwork pods are never selected',
    cluster: cluster(
      [pod('default/web', { app: 'web' }, { hostNetwork: true }), client],
      [policy('default/p', { ...selectWeb, ingress: [] })],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: true,
  },
  {
    rule: 'hostNetwork pods are not matched by pod selectors',
    cluster: cluster(
      [web, pod('default/client', { run: 'client' }, { hostNetwork: true })],
      [policy('default/p', onlyFrom({ podSelector: {} }))],
    ),
    from: 'default/client',
    to: 'default/web',
    allowed: false,
  },
];

describe('NetworkPolicy semantics (compiled engine and reference agree)', () => {
  it.each(
    [...selectorRows, ...peerRows, ...ipBlockRows, ...portRows, ...typeRows].map(
      (r) => [r.rule, r] as const,
    ),
  )('%s', (_rule, row) => {
    expect(ask(row.cluster, row.from, row.to, row.port, row.protocol).allowed).toBe(row.allowed);
  });
});

describe('explanations', () => {
  const c = cluster(
    [web, client],
    [
      policy('default/deny-all', { podSelector: {}, ingress: [] }),
      policy('default/allow-http', {
        ...selectWeb,
        ingress: [
          { from: [{ podSelector: { matchLabels: { run: 'x' } } }] },
          { ports: [{ port: 80 }] },
        ],
      }),
    ],
  );

  it('names the selecting policies and the admitting rule', () => {
    const verdict = ask(c, 'default/client', 'default/web', 80);
    expect(verdict.explanation.ingress).toEqual({
      isolated: true,
      policies: ['default/allow-http', 'default/deny-all'],
      allowedBy: [{ policy: 'default/allow-http', direction: 'ingress', index: 1 }],
      allowed: true,
    });
    expect(verdict.explanation.egress).toEqual({
      isolated: false,
      policies: [],
      allowedBy: [],
      allowed: true,
    });
  });

  it('says the pod is isolated and no rule matched', () => {
    const verdict = ask(c, 'default/client', 'default/web', 81);
    expect(verdict.allowed).toBe(false);
    expect(verdict.explanation.ingress).toMatchObject({
      isolated: true,
      allowedBy: [],
      allowed: false,
    });
  });

  it('reports hostNetwork sources and destinations as unprobeable', () => {
    const h = cluster([pod('default/host', {}, { hostNetwork: true }), client], []);
    expect(ask(h, 'default/host', 'default/client').explanation.unprobeable).toBe(
      HOST_NETWORK_SOURCE,
    );
    expect(ask(h, 'default/client', 'default/host').explanation.unprobeable).toBe(
      HOST_NETWORK_DESTINATION,
    );
    expect(ask(h, 'default/client', 'default/client').explanation.unprobeable).toBeUndefined();
  });
});
