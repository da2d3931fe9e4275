import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { NmapOutputError, nmapArguments, observe, parseNmapXml } from '#lumen/prober';

const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -sU -Pn -n -p T:80,U:53 -oX - 10.244.1.2" start="1764130000" version="7.93" xmloutputversion="1.05">
<host starttime="1764130000" endtime="1764130001"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="10.244.1.2" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" method="table" conf="3"/></port>
<port protocol="udp" portid="53"><state state="open|filtered" reason="no-response" reason_ttl="0"/></port>
</ports><times srtt="100" rttvar="5000" to="100000"/></host>
<host><status state="up" reason="user-set"/><address addr="10.244.1.3" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="80"><state state="closed" reason="reset" reason_ttl="64"/></port></ports></host>
<runstats><finished time="1764130001" timestr="x" summary="Nmap done at x; 2 IP addresses (2 hosts up) scanned in 1.23 seconds" elapsed="1.23" exit="success"/><hosts up="2" down="0" total="2"/></runstats>
</nmaprun>`;

describe('nmapArguments', () => {
  it('scans every target and port in one process, XML on stdout', () => {
    expect(
      nmapArguments({
        targets: ['10.0.0.2', '10.0.0.3'],
        ports: { TCP: [80, 443, 80], UDP: [53] },
      }),
    ).toEqual([
      '-sS',
      '-sU',
      '-Pn',
      '--disable-arp-ping',
      '-n',
      '--reason',
      '--max-retries',
      '1',
      '--max-rtt-timeout',
      '300ms',
      '--initial-rtt-timeout',
      '100ms',
      '-p',
      'T:80,443,U:53',
      '-oX',
      '-',
      '10.0.0.2',
      '10.0.0.3',
    ]);
  });

  it('uses -6 for IPv6 targets and -sT for a connect scan', () => {
    const args = nmapArguments({ targets: ['fd00::2'], ports: { TCP: [80] }, tcpScan: 'connect' });
    expect(args.slice(0, 2)).toEqual(['-sT', '-6']);
  });

  it.each([
    [
      'an option smuggled in as a target',
      { targets: ['--script=evil'], ports: { TCP: [80] } },
      'not an IP address',
    ],
    ['a hostname', { targets: ['example.com'], ports: { TCP: [80] } }, 'not an IP address'],
    ['a port out of range', { targets: ['10.0.0.1'], ports: { TCP: [0] } }, 'not a port'],
    ['no targets', { targets: [], ports: { TCP: [80] } }, 'at least one target'],
    ['no ports', { targets: ['10.0.0.1'], ports: {} }, 'at least one port'],
    ['mixed families', { targets: ['10.0.0.1', 'fd00::1'], ports: { TCP: [80] } }, 'one IP family'],
  ])('refuses %s', (_name, request, message) => {
    expect(() => nmapArguments(request)).toThrow(message);
  });

  it('never lets a target start with a dash (property)', () => {
    fc.assert(
      fc.property(fc.string(), (target) => {
        try {
          const args = nmapArguments({ targets: [target], ports: { TCP: [80] } });
          expect(args[args.length - 1]!.startsWith('-')).toBe(false);
        } catch (error) {
          expect((error as Error).message).toContain('not an IP address');
        }
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('parseNmapXml', () => {
  it('reads state, reason and TTL of every port of every host', () => {
    const result = parseNmapXml(xml);
    expect(result.ports).toEqual([
      {
        address: '10.244.1.2',
        port: 80,
        protocol: 'TCP',
        state: 'open',
        reason: 'syn-ack',
        reasonTtl: 64,
      },
      {
        address: '10.244.1.2',
        port: 53,
        protocol: 'UDP',
        state: 'open|filtered',
        reason: 'no-response',
        reasonTtl: 0,
      },
      {
        address: '10.244.1.3',
        port: 80,
        protocol: 'TCP',
        state: 'closed',
        reason: 'reset',
        reasonTtl: 64,
      },
    ]);
    expect(result.elapsedSeconds).toBe(1.23);
    expect(result.error).toBeUndefined();
  });

  it('reports a failed run', () => {
    const failed = xml.replace(
      'exit="success"',
      'exit="error" errormsg="Failed to open device eth0"',
    );
    expect(parseNmapXml(failed).error).toBe('Failed to open device eth0');
  });

  it.each([
    ['empty output', ''],
    ['plain text', 'Starting Nmap 7.93\nFailed to resolve'],
    ['another XML document', '<html><body/></html>'],
    ['a truncated run', xml.slice(0, xml.indexOf('<runstats>'))],
    ['a port without a number', xml.replace('portid="80"', 'portid="eighty"')],
  ])('refuses %s with an NmapOutputError', (_name, text) => {
    expect(() => parseNmapXml(text)).toThrow(NmapOutputError);
  });

  it('never throws anything but NmapOutputError on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseNmapXml(text);
        } catch (error) {
          expect(error).toBeInstanceOf(NmapOutputError);
        }
      }),
      { seed: 11, numRuns: 500 },
    );
  });
});

describe('observe (the verdict model)', () => {
  it.each([
    ['TCP', 'open', 'syn-ack', false, 'reachable'],
    ['TCP', 'closed', 'reset', false, 'reachable'],
    ['TCP', 'closed', 'reset', true, 'blocked'],
    ['TCP', 'filtered', 'no-response', false, 'blocked'],
    ['TCP', 'filtered', 'admin-prohibited', false, 'blocked'],
    ['UDP', 'open', 'udp-response', true, 'reachable'],
    ['UDP', 'open|filtered', 'no-response', true, 'blocked'],
    ['UDP', 'open|filtered', 'no-response', false, 'inconclusive'],
    ['UDP', 'closed', 'port-unreach', true, 'blocked'],
    ['UDP', 'closed', 'port-unreach', false, 'reachable'],
    ['TCP', 'unfiltered', 'reset', false, 'inconclusive'],
  ] as const)(
    '%s %s (%s), listener known: %s -> %s',
    (protocol, state, reason, known, reachability) => {
      expect(observe({ protocol, state, reason }, known).reachability).toBe(reachability);
    },
  );
});
