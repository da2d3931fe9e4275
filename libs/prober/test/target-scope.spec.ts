import { describe, expect, it } from '@jest/globals';
import { parseCidr, type Cidr } from '#lumen/policy';
import { targetScopeFromNodes, type NodeAddressing } from '#lumen/prober';

const node = (podCIDRs: string[], addresses: [string, string][]): NodeAddressing => ({
  spec: { podCIDRs },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});
const cidr = (text: string): Cidr => parseCidr(text) as Cidr;

describe('targetScopeFromNodes', () => {
  const nodes = [
    node(
      ['10.244.0.0/24', 'fd00:10:244::/64'],
      [
        ['InternalIP', '172.18.0.2'],
        ['InternalIP', 'fc00:f853:ccd:e793::2'],
        ['Hostname', 'kind-control-plane'],
      ],
    ),
    node(
      ['10.244.1.0/24'],
      [
        ['InternalIP', '172.18.0.3'],
        ['ExternalIP', '203.0.113.9'],
      ],
    ),
  ];

  it('takes every node’s pod CIDRs, and refuses every node’s internal and external addresses', () => {
    expect(targetScopeFromNodes(nodes, { refused: ['10.244.0.1'] })).toEqual({
      podCidrs: [cidr('10.244.0.0/24'), cidr('fd00:10:244::/64'), cidr('10.244.1.0/24')],
      refusedAddresses: [
        '10.244.0.1',
        '172.18.0.2',
        '172.18.0.3',
        '203.0.113.9',
        'fc00:f853:ccd:e793::2',
      ],
    });
  });

  it.each([
    [
      'an override, for a CNI with its own IPAM',
      { podCidrs: [cidr('192.168.0.0/16')] },
      ['192.168.0.0/16'],
    ],
    ['no override', {}, ['10.244.0.0/24', 'fd00:10:244::/64', '10.244.1.0/24']],
  ])('with %s, aims at %j', (_what, options, expected) => {
    expect(targetScopeFromNodes(nodes, options).podCidrs).toEqual(expected.map(cidr));
  });

  it('reads the single podCIDR of older nodes, and gives no CIDR when no node has one', () => {
    expect(targetScopeFromNodes([{ spec: { podCIDR: '10.1.0.0/24' } }], {}).podCidrs).toEqual([
      cidr('10.1.0.0/24'),
    ]);
    expect(targetScopeFromNodes([{ spec: {} }], {})).toEqual({
      podCidrs: [],
      refusedAddresses: [],
    });
  });
});
