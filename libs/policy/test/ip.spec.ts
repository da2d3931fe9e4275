import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { cidrContains, cidrCovers, parseCidr, parseIp } from '#lumen/policy';

describe('parseIp', () => {
  it.each([
    ['10.0.0.1', 4, 0x0a000001n],
    ['255.255.255.255', 4, 0xffffffffn],
    ['0.0.0.0', 4, 0n],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['fd00::1', 6, (0xfd00n << 112n) | 1n],
    ['FD00:0:0:0:0:0:0:1', 6, (0xfd00n << 112n) | 1n],
    ['1:2:3:4:5:6:7:8', 6, 0x00010002000300040005000600070008n],
    ['::ffff:10.0.0.1', 6, 0xffff0a000001n],
  ])('%s', (text, family, value) => {
    expect(parseIp(text)).toEqual({ family, value });
  });

  it.each([
    '',
    '10.0.0',
    '10.0.0.256',
    '01.0.0.1',
    '1.2.3.4.5',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    'fd00::g',
    '1:2:3:4:5:6:7::8:9',
    'a.b.c.d',
  ])('rejects %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  it('round-trips every IPv4 address it prints', () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        const value = parseIp(text)?.value;
        expect(value).toBeDefined();
        const octets = [24n, 16n, 8n, 0n].map((shift) => String((value! >> shift) & 0xffn));
        expect(octets.join('.')).toBe(text);
      }),
      { seed: 4, numRuns: 500 },
    );
  });

  it('parses every IPv6 form fast-check generates', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        expect(parseIp(text)?.family).toBe(6);
      }),
      { seed: 6, numRuns: 500 },
    );
  });
});

describe('CIDRs', () => {
  it.each([
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.1.2.3/16', '10.1.200.1', true],
    ['0.0.0.0/0', '1.2.3.4', true],
    ['1.2.3.4/32', '1.2.3.4', true],
    ['1.2.3.4/32', '1.2.3.5', false],
    ['fd00::/8', 'fdff::1', true],
    ['fd00::/8', 'fe00::1', false],
    ['::/0', '10.0.0.1', false],
  ])('%s contains %s: %s', (cidr, ip, contained) => {
    expect(cidrContains(parseCidr(cidr)!, parseIp(ip)!)).toBe(contained);
  });

  it.each([
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.0.0.0/16', '10.0.0.0/8', false],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/8', 'fd00::/16', false],
  ])('%s covers %s: %s', (outer, inner, covered) => {
    expect(cidrCovers(parseCidr(outer)!, parseCidr(inner)!)).toBe(covered);
  });

  it.each(['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/ 8', 'x/8'])(
    'rejects %j',
    (text) => {
      expect(parseCidr(text)).toBeUndefined();
    },
  );
});
