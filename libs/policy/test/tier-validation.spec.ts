/**
 * Validation of the cluster-scoped kinds: what the CRD schemas (MinProperties/MaxProperties,
 * enums, bounds) and their CEL rules refuse, each with the field path in the message.
 */
import { describe, expect, it } from '@jest/globals';
import {
  formatPolicyError,
  validateClusterPolicy,
  type ClusterPolicyManifest,
} from '#lumen/policy';

const cnp = (spec: Record<string, unknown>, name = 'p'): ClusterPolicyManifest => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha2',
  kind: 'ClusterNetworkPolicy',
  metadata: { name },
  spec,
});
const base = { tier: 'Admin', priority: 10, subject: { namespaces: {} } };
const rule = (extra: Record<string, unknown>) => ({
  action: 'Deny',
  to: [{ namespaces: {} }],
  ...extra,
});

describe('validateClusterPolicy', () => {
  it.each([
    ['tier is required', cnp({ ...base, tier: undefined }), 'spec.tier: is required'],
    [
      'tier is Admin or Baseline',
      cnp({ ...base, tier: 'Developer' }),
      'spec.tier: unsupported value "Developer"; expected Admin or Baseline',
    ],
    [
      'priority is at most 1000',
      cnp({ ...base, priority: 1001 }),
      'spec.priority: 1001 is not an integer from 0 to 1000',
    ],
    [
      'priority is at least 0',
      cnp({ ...base, priority: -1 }),
      'spec.priority: -1 is not an integer from 0 to 1000',
    ],
    [
      'subject sets one field',
      cnp({ ...base, subject: {} }),
      'spec.subject: must set exactly one of namespaces, pods',
    ],
    [
      'subject sets only one field',
      cnp({ ...base, subject: { namespaces: {}, pods: { podSelector: {} } } }),
      'spec.subject: must set exactly one of namespaces, pods; it sets namespaces, pods',
    ],
    [
      'subject pods needs a podSelector',
      cnp({ ...base, subject: { pods: { namespaceSelector: {} } } }),
      'spec.subject.pods.podSelector: is required',
    ],
    [
      'selectors are checked',
      cnp({ ...base, subject: { namespaces: { matchLabels: { 'bad key!': 'x' } } } }),
      'spec.subject.namespaces.matchLabels.bad key!',
    ],
    [
      'v1alpha2 actions are Accept, Deny, Pass',
      cnp({ ...base, egress: [rule({ action: 'Allow' })] }),
      'spec.egress[0].action: unsupported value "Allow"; expected one of Accept, Deny, Pass',
    ],
    [
      'a rule needs peers',
      cnp({ ...base, ingress: [{ action: 'Deny' }] }),
      'spec.ingress[0].from: is required',
    ],
    [
      'a rule needs at least one peer',
      cnp({ ...base, ingress: [{ action: 'Deny', from: [] }] }),
      'spec.ingress[0].from: must have at least 1 item(s)',
    ],
    [
      'at most 25 rules',
      cnp({ ...base, egress: Array.from({ length: 26 }, () => rule({})) }),
      'spec.egress: must have at most 25 items',
    ],
    [
      'a peer sets one field',
      cnp({ ...base, egress: [rule({ to: [{ namespaces: {}, networks: ['10.0.0.0/8'] }] })] }),
      'spec.egress[0].to[0]: must set exactly one of namespaces, pods, nodes, networks, domainNames; it sets namespaces, networks',
    ],
    [
      'networks are CIDRs',
      cnp({ ...base, egress: [rule({ to: [{ networks: ['10.0.0.0/33'] }] })] }),
      'spec.egress[0].to[0].networks[0]: "10.0.0.0/33": Invalid CIDR format provided',
    ],
    [
      'at most 25 networks',
      cnp({
        ...base,
        egress: [
          rule({ to: [{ networks: Array.from({ length: 26 }, (_, i) => `10.${i}.0.0/16`) }] }),
        ],
      }),
      'spec.egress[0].to[0].networks: must have at most 25 items',
    ],
    [
      'domainNames only in Accept rules',
      cnp({ ...base, egress: [rule({ to: [{ domainNames: ['example.com'] }] })] }),
      'spec.egress[0].action: domainNames peers are only supported in Accept rules',
    ],
    [
      'domain names follow the pattern',
      cnp({
        ...base,
        egress: [rule({ action: 'Accept', to: [{ domainNames: ['*example.com'] }] })],
      }),
      'spec.egress[0].to[0].domainNames[0]: "*example.com" is not a domain name',
    ],
    [
      'a protocol sets one field',
      cnp({ ...base, egress: [rule({ protocols: [{}] })] }),
      'spec.egress[0].protocols[0]: must set exactly one of tcp, udp, sctp, destinationNamedPort',
    ],
    [
      'a port sets number or range',
      cnp({ ...base, egress: [rule({ protocols: [{ tcp: { destinationPort: {} } }] })] }),
      'spec.egress[0].protocols[0].tcp.destinationPort: must set exactly one of number, range',
    ],
    [
      'tcp needs a destinationPort',
      cnp({ ...base, egress: [rule({ protocols: [{ tcp: {} }] })] }),
      'spec.egress[0].protocols[0].tcp.destinationPort: is required',
    ],
    [
      'a range starts below its end',
      cnp({
        ...base,
        egress: [
          rule({ protocols: [{ udp: { destinationPort: { range: { start: 90, end: 90 } } } }] }),
        ],
      }),
      'spec.egress[0].protocols[0].udp.destinationPort.range: Start port must be less than End port',
    ],
    [
      'ports are 1-65535',
      cnp({
        ...base,
        egress: [rule({ protocols: [{ sctp: { destinationPort: { number: 0 } } }] })],
      }),
      'spec.egress[0].protocols[0].sctp.destinationPort.number: 0 is not a port number (1-65535)',
    ],
    [
      'protocols, when present, list one at least',
      cnp({ ...base, egress: [rule({ protocols: [] })] }),
      'spec.egress[0].protocols: must have at least 1 item(s)',
    ],
    [
      'CEL: no named port with networks',
      cnp({
        ...base,
        egress: [
          rule({
            to: [{ networks: ['10.0.0.0/8'] }],
            protocols: [{ destinationNamedPort: 'http' }],
          }),
        ],
      }),
      'spec.egress[0]: networks/nodes/domainNames peer cannot be set with namedPorts',
    ],
    [
      'rule names are at most 100 characters',
      cnp({ ...base, egress: [rule({ name: 'x'.repeat(101) })] }),
      'spec.egress[0].name: must be a string of at most 100 characters',
    ],
    [
      'a BaselineAdminNetworkPolicy is named default',
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'BaselineAdminNetworkPolicy',
        metadata: { name: 'mine' },
        spec: { subject: { namespaces: {} } },
      },
      'metadata.name: Only one baseline admin network policy with metadata.name="default" can be created in the cluster',
    ],
    [
      'BaselineAdminNetworkPolicy actions are Allow and Deny',
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'BaselineAdminNetworkPolicy',
        metadata: { name: 'default' },
        spec: {
          subject: { namespaces: {} },
          ingress: [{ action: 'Pass', from: [{ namespaces: {} }] }],
        },
      },
      'spec.ingress[0].action: unsupported value "Pass"; expected one of Allow, Deny',
    ],
    [
      'AdminNetworkPolicy ports set one field',
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'a' },
        spec: {
          priority: 1,
          subject: { namespaces: {} },
          ingress: [
            {
              action: 'Allow',
              from: [{ namespaces: {} }],
              ports: [{ portNumber: { port: 80, protocol: 'TCP' }, namedPort: 'http' }],
            },
          ],
        },
      },
      'spec.ingress[0].ports[0]: must set exactly one of portNumber, namedPort, portRange; it sets portNumber, namedPort',
    ],
    [
      'AdminNetworkPolicy protocols are TCP, UDP or SCTP',
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'a' },
        spec: {
          priority: 1,
          subject: { namespaces: {} },
          ingress: [
            {
              action: 'Allow',
              from: [{ namespaces: {} }],
              ports: [{ portNumber: { port: 80, protocol: 'ICMP' } }],
            },
          ],
        },
      },
      'spec.ingress[0].ports[0].portNumber.protocol: unknown protocol "ICMP"; expected TCP, UDP or SCTP',
    ],
    [
      'the API version must match the kind',
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'p' },
        spec: base,
      },
      'apiVersion: ClusterNetworkPolicy is served as policy.networking.k8s.io/v1alpha2, not "policy.networking.k8s.io/v1alpha1"',
    ],
  ])('%s', (_rule, manifest, message: string) => {
    const result = validateClusterPolicy(manifest);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const text = result.errors.map(formatPolicyError).join('\n');
    expect(text).toContain(message);
    expect(text).toMatch(/^(ClusterNetworkPolicy|AdminNetworkPolicy|BaselineAdminNetworkPolicy) /);
  });

  it('maps v1alpha2 onto the tier model', () => {
    const result = validateClusterPolicy(
      cnp({
        tier: 'Baseline',
        priority: 7,
        subject: { pods: { podSelector: { matchLabels: { app: 'web' } } } },
        ingress: [
          {
            name: 'web',
            action: 'Accept',
            from: [{ namespaces: {} }],
            protocols: [
              { tcp: { destinationPort: { number: 80 } } },
              { udp: { destinationPort: { range: { start: 1000, end: 2000 } } } },
              { destinationNamedPort: 'http' },
            ],
          },
        ],
      }),
    );
    expect(result).toMatchObject({
      ok: true,
      policy: {
        key: 'ClusterNetworkPolicy/p',
        tier: 'Baseline',
        priority: 7,
        subject: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'web' } } },
        rules: [
          {
            direction: 'ingress',
            index: 0,
            name: 'web',
            action: 'Accept',
            peers: [{ kind: 'namespaces', namespaceSelector: {} }],
            ports: [
              { protocol: 'TCP', port: 80 },
              { protocol: 'UDP', port: 1000, endPort: 2000 },
              { name: 'http' },
            ],
          },
        ],
      },
    });
  });

  it.each([
    ['Accept', { action: 'Accept', peers: [], ports: 'any', failClosed: true }],
    ['Deny', { action: 'Deny', peers: [{ kind: 'all' }], ports: 'any', failClosed: true }],
    ['Pass', { action: 'Deny', peers: [{ kind: 'all' }], ports: 'any', failClosed: true }],
  ])(
    'fails closed on a peer of an unknown kind in a %s rule, as the spec says',
    (action, normalized) => {
      const result = validateClusterPolicy(
        cnp({
          ...base,
          egress: [
            {
              action,
              to: [{ namespaces: {} }, { futurePeer: {} }],
              protocols: [{ tcp: { destinationPort: { number: 80 } } }],
            },
          ],
        }),
      );
      expect(result).toMatchObject({ ok: true, policy: { rules: [normalized] } });
    },
  );

  it('maps v1alpha1: Allow is Accept, the BaselineAdminNetworkPolicy is Baseline', () => {
    const result = validateClusterPolicy({
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'BaselineAdminNetworkPolicy',
      metadata: { name: 'default' },
      spec: {
        subject: { namespaces: {} },
        egress: [
          {
            action: 'Allow',
            to: [{ networks: ['10.0.0.0/8'] }],
            ports: [{ portRange: { start: 1, end: 100 } }],
          },
        ],
      },
    });
    expect(result).toMatchObject({
      ok: true,
      policy: {
        key: 'BaselineAdminNetworkPolicy/default',
        tier: 'Baseline',
        rules: [{ action: 'Accept', ports: [{ protocol: 'TCP', port: 1, endPort: 100 }] }],
      },
    });
  });
});
