import { describe, expect, it } from '@jest/globals';
import { PolicyEngine, formatPolicyError, validatePolicy } from '#lumen/policy';
import { cluster, pod, policy } from './fixtures.js';

const ingressFrom = (peer: object): object => ({ podSelector: {}, ingress: [{ from: [peer] }] });
const ingressPorts = (port: object): object => ({ podSelector: {}, ingress: [{ ports: [port] }] });

describe('invalid policies get a precise error naming the policy and field', () => {
  it.each([
    [
      'a bad CIDR',
      ingressFrom({ ipBlock: { cidr: '10.0.0.300/8' } }),
      'spec.ingress[0].from[0].ipBlock.cidr',
      'not a valid CIDR',
    ],
    [
      'a CIDR without prefix',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0' } }),
      'spec.ingress[0].from[0].ipBlock.cidr',
      'not a valid CIDR',
    ],
    [
      'a prefix too long',
      ingressFrom({ ipBlock: { cidr: 'fd00::/129' } }),
      'spec.ingress[0].from[0].ipBlock.cidr',
      'not a valid CIDR',
    ],
    [
      'an except outside its cidr',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }),
      'spec.ingress[0].from[0].ipBlock.except[0]',
      'not strictly inside cidr 10.0.0.0/16',
    ],
    [
      'an except equal to its cidr',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] } }),
      'spec.ingress[0].from[0].ipBlock.except[0]',
      'not strictly inside',
    ],
    [
      'an except of the other family',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0/8', except: ['fd00::/64'] } }),
      'spec.ingress[0].from[0].ipBlock.except[0]',
      'not strictly inside',
    ],
    [
      'an invalid except',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0/8', except: ['nope'] } }),
      'spec.ingress[0].from[0].ipBlock.except[0]',
      'not a valid CIDR',
    ],
    [
      'endPort < port',
      ingressPorts({ port: 8080, endPort: 8000 }),
      'spec.ingress[0].ports[0].endPort',
      '8000 is less than port 8080',
    ],
    [
      'endPort with a named port',
      ingressPorts({ port: 'http', endPort: 8000 }),
      'spec.ingress[0].ports[0].endPort',
      'may not be used with a named port',
    ],
    [
      'endPort without port',
      ingressPorts({ endPort: 8000 }),
      'spec.ingress[0].ports[0].endPort',
      'requires port',
    ],
    [
      'endPort out of range',
      ingressPorts({ port: 80, endPort: 70000 }),
      'spec.ingress[0].ports[0].endPort',
      'not a port number',
    ],
    [
      'an unknown protocol',
      ingressPorts({ protocol: 'ICMP', port: 80 }),
      'spec.ingress[0].ports[0].protocol',
      'unknown protocol "ICMP"',
    ],
    [
      'a lower-case protocol',
      ingressPorts({ protocol: 'tcp' }),
      'spec.ingress[0].ports[0].protocol',
      'unknown protocol "tcp"',
    ],
    ['port 0', ingressPorts({ port: 0 }), 'spec.ingress[0].ports[0].port', 'not a port number'],
    [
      'a bad port name',
      ingressPorts({ port: 'HTTP_80' }),
      'spec.ingress[0].ports[0].port',
      'neither a port number nor a valid port name',
    ],
    [
      'an unknown operator',
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Contains', values: ['x'] }] } },
      'spec.podSelector.matchExpressions[0].operator',
      'unknown operator "Contains"',
    ],
    [
      'In without values',
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } },
      'spec.podSelector.matchExpressions[0].values',
      'must be non-empty',
    ],
    [
      'Exists with values',
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } },
      'spec.podSelector.matchExpressions[0].values',
      'must be empty',
    ],
    [
      'a bad label value',
      { podSelector: { matchLabels: { app: 'not valid!' } } },
      'spec.podSelector.matchLabels.app',
      'not a valid label value',
    ],
    [
      'a bad label key',
      { podSelector: { matchLabels: { '-app': 'x' } } },
      'spec.podSelector.matchLabels.-app',
      'not a valid label key',
    ],
    [
      'an empty peer',
      ingressFrom({}),
      'spec.ingress[0].from[0]',
      'must specify podSelector, namespaceSelector or ipBlock',
    ],
    [
      'ipBlock with a selector',
      ingressFrom({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }),
      'spec.ingress[0].from[0]',
      'may not be combined',
    ],
    [
      'an unknown policy type',
      { podSelector: {}, policyTypes: ['Ingress', 'Sideways'] },
      'spec.policyTypes[1]',
      'unknown policy type "Sideways"',
    ],
    [
      'egress peers in the wrong shape',
      { podSelector: {}, egress: [{ to: { podSelector: {} } }] },
      'spec.egress[0].to',
      'must be a list',
    ],
  ])('%s', (_name, spec, field, message) => {
    const result = validatePolicy(policy('team-a/broken', spec));
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toContainEqual(expect.objectContaining({ policy: 'team-a/broken', field }));
    const error = errors.find((e) => e.field === field);
    expect(error?.message).toContain(message);
    expect(formatPolicyError(error!)).toBe(
      `NetworkPolicy team-a/broken: ${field}: ${error!.message}`,
    );
  });

  it('reports every problem of a policy, not just the first', () => {
    const result = validatePolicy(
      policy('default/p', ingressPorts({ protocol: 'ICMP', port: 80, endPort: 1 })),
    );
    expect(result.ok ? [] : result.errors.map((e) => e.field)).toEqual([
      'spec.ingress[0].ports[0].protocol',
      'spec.ingress[0].ports[0].endPort',
    ]);
  });

  it('accepts a CIDR with host bits set, as the API server does', () => {
    expect(
      validatePolicy(policy('default/p', ingressFrom({ ipBlock: { cidr: '10.0.0.7/24' } }))).ok,
    ).toBe(true);
  });

  it('keeps the rest of the model working', () => {
    const c = cluster(
      [pod('default/web', { app: 'web' }), pod('default/client')],
      [
        policy('default/broken', ingressPorts({ port: 80, endPort: 1 })),
        policy('default/deny', { podSelector: {}, ingress: [] }),
      ],
    );
    const engine = new PolicyEngine(c);
    expect(engine.errors.map((e) => e.policy)).toEqual(['default/broken']);
    expect(engine.policies.map((p) => p.key)).toEqual(['default/deny']);
    const connection = {
      from: { namespace: 'default', name: 'client' },
      to: { namespace: 'default', name: 'web' },
      port: 80,
      protocol: 'TCP' as const,
    };
    expect(engine.verdict(connection).allowed).toBe(false);
    engine.setPolicy(policy('default/broken', ingressPorts({ port: 80 })));
    expect(engine.errors).toEqual([]);
    expect(engine.verdict(connection).allowed).toBe(true);
  });
});
