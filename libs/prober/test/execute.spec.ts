import { describe, expect, it } from '@jest/globals';
import type { ProbeBatch } from '#lumen/contracts';
import { parseCidr } from '#lumen/policy';
import { executeBatch, type ProbeHost, type ProberSettings } from '#lumen/prober';

const settings: ProberSettings = {
  node: 'node-a',
  podCidrs: [parseCidr('10.244.0.0/16')!],
  serviceCidrs: [parseCidr('10.96.0.0/16')!],
  protocols: ['TCP', 'UDP'],
  portRanges: [{ from: 1, to: 65535 }],
  sctpSupported: false,
  tcpScan: 'syn',
  maxRttTimeoutMs: 300,
  hostTimeoutMs: 30_000,
  maxRate: 1000,
  maxTargetsPerBatch: 4,
  refusedAddresses: ['10.244.0.1'],
};

const target = (
  caseId: string,
  ip: string,
  port = 80,
  protocol: 'TCP' | 'UDP' | 'SCTP' = 'TCP',
) => ({
  caseId,
  round: 1,
  destination: { namespace: 'default', name: 'web' },
  ip,
  port,
  protocol,
  listenerKnown: true,
});

/** A target through a Service: its ClusterIP, no destination pod. */
const throughService = (
  caseId: string,
  ip: string,
  port = 80,
  protocol: 'TCP' | 'UDP' = 'TCP',
) => ({
  caseId,
  round: 1,
  service: { namespace: 'shop', name: 'api' },
  ip,
  port,
  protocol,
  listenerKnown: true,
});

const batch: ProbeBatch = {
  batchId: 'b-1',
  node: 'node-a',
  attempt: 1,
  source: { namespace: 'default', name: 'client', uid: '0f0f0f0f-0000-4000-8000-000000000001' },
  targets: [
    target('000000000000000a', '10.244.1.2'),
    target('000000000000000b', '10.244.1.3', 53, 'UDP'),
  ],
  issuedAt: '2026-11-26T05:00:00Z',
};

const xml = (ports: string): string =>
  `<?xml version="1.0"?><nmaprun><host><address addr="10.244.1.2" addrtype="ipv4"/><ports>${ports}</ports></host>` +
  `<host><address addr="10.244.1.3" addrtype="ipv4"/><ports><port protocol="udp" portid="53"><state state="open|filtered" reason="no-response" reason_ttl="0"/></port></ports></host>` +
  `<runstats><finished elapsed="0.5" exit="success" summary="done"/></runstats></nmaprun>`;

function ports(overrides: Partial<ProbeHost> = {}, calls: string[][] = []): ProbeHost {
  let tick = 0;
  return {
    findNetns: async () => ({ uid: 'u-42', pid: 42, path: '/proc/42/ns/net', hostNetwork: false }),
    stillThere: async () => true,
    runNmap: async (_netns, args) => {
      calls.push([...args]);
      return {
        code: 0,
        signal: null,
        stdout: xml(
          '<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port>',
        ),
        stderr: '',
        timedOut: false,
        durationMs: 500,
      };
    },
    now: () => new Date(Date.UTC(2026, 10, 26, 5, 0, 0, (tick += 100))),
    ...overrides,
  };
}

describe('executeBatch', () => {
  it('runs one nmap for the whole batch and turns its answers into observations with evidence', async () => {
    const calls: string[][] = [];
    const result = await executeBatch(batch, settings, ports({}, calls));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(
      expect.arrayContaining(['-sS', '-sU', '-p', 'T:80,U:53', '10.244.1.2', '10.244.1.3']),
    );
    expect(result.observations).toEqual([
      {
        caseId: '000000000000000a',
        round: 1,
        destination: { namespace: 'default', name: 'web' },
        ip: '10.244.1.2',
        port: 80,
        protocol: 'TCP',
        reachability: 'reachable',
        basis: 'open (syn-ack)',
        evidence: { state: 'open', reason: 'syn-ack', reasonTtl: 64 },
      },
      expect.objectContaining({
        caseId: '000000000000000b',
        reachability: 'blocked',
        evidence: { state: 'open|filtered', reason: 'no-response', reasonTtl: 0 },
      }),
    ]);
    expect(result.command?.slice(0, 3)).toEqual(['nsenter', '--net=/proc/42/ns/net', 'nmap']);
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it.each([
    [
      'a target outside the pod CIDRs',
      target('000000000000000c', '192.168.1.1'),
      'refused: 192.168.1.1 is outside the pod CIDRs',
    ],
    [
      'a protocol not allowed',
      target('000000000000000c', '10.244.1.9', 80, 'SCTP'),
      'refused: protocol SCTP is not allowed',
    ],
    [
      'an address of its own node (the kubelet), even inside the pod CIDRs',
      target('000000000000000c', '10.244.0.1', 10250),
      'refused: 10.244.0.1 is an address of a node',
    ],
    [
      'a ClusterIP outside the service CIDRs',
      throughService('000000000000000c', '10.1.2.3'),
      'refused: 10.1.2.3 (Service shop/api) is outside the service CIDRs',
    ],
    [
      'UDP through a Service',
      throughService('000000000000000c', '10.96.0.12', 53, 'UDP'),
      'refused: only TCP is probed through a Service (Service shop/api)',
    ],
  ])('refuses %s and says so, probing the rest', async (_name, bad, basis) => {
    const calls: string[][] = [];
    const result = await executeBatch(
      { ...batch, targets: [...batch.targets, bad] },
      settings,
      ports({}, calls),
    );
    expect(result.observations[2]).toMatchObject({
      caseId: '000000000000000c',
      reachability: 'inconclusive',
      basis,
    });
    expect(calls[0]).not.toContain(bad.ip);
    expect(result.observations[0]?.reachability).toBe('reachable');
  });

  it('probes a Service target with a connect scan of its own, and says the path in the basis', async () => {
    const calls: string[][] = [];
    const scans = ports({}, calls);
    const host: ProbeHost = {
      ...scans,
      runNmap: async (netns, args) => {
        const answer = await scans.runNmap(netns, args);
        if (!args.includes('-sT')) return answer;
        return {
          ...answer,
          stdout:
            '<?xml version="1.0"?><nmaprun><host><address addr="10.96.0.12" addrtype="ipv4"/><ports>' +
            '<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="0"/></port>' +
            '</ports></host><runstats><finished elapsed="0.1" exit="success" summary="done"/></runstats></nmaprun>',
        };
      },
    };
    const result = await executeBatch(
      { ...batch, targets: [...batch.targets, throughService('000000000000000d', '10.96.0.12')] },
      settings,
      host,
    );
    expect(calls).toHaveLength(2);
    expect(calls[0]).toContain('-sS');
    expect(calls[0]).not.toContain('10.96.0.12');
    expect(calls[1]).toContain('-sT');
    expect(calls[1]).toContain('10.96.0.12');
    expect(calls[1]).not.toContain('10.244.1.2');
    expect(result.observations[2]).toMatchObject({
      caseId: '000000000000000d',
      ip: '10.96.0.12',
      reachability: 'reachable',
    });
    expect(result.observations[2]).not.toHaveProperty('destination');
    expect(result.observations[2]?.basis).toContain(
      'through Service shop/api at 10.96.0.12:80; which backend answered cannot be told',
    );
  });

  it('caps nmap’s packet rate', async () => {
    const calls: string[][] = [];
    await executeBatch(batch, settings, ports({}, calls));
    const at = calls[0]!.indexOf('--max-rate');
    expect(calls[0]!.slice(at, at + 2)).toEqual(['--max-rate', '1000']);
  });

  it('refuses a batch with more targets than its cap, whole, without running nmap', async () => {
    const calls: string[][] = [];
    const many = [1, 2, 3, 4, 5].map((n) => target(`00000000000000${n}f`, `10.244.1.${n}`));
    const result = await executeBatch({ ...batch, targets: many }, settings, ports({}, calls));
    expect(calls).toEqual([]);
    expect(result.observations.map((o) => [o.reachability, o.basis])).toEqual(
      many.map(() => ['inconclusive', 'refused: the batch names 5 targets, more than 4']),
    );
  });

  it('reports SCTP as unsupported where the kernel lacks it', async () => {
    const result = await executeBatch(
      { ...batch, targets: [target('000000000000000d', '10.244.1.2', 3868, 'SCTP')] },
      { ...settings, protocols: ['TCP', 'UDP', 'SCTP'] },
      ports(),
    );
    expect(result.observations[0]).toMatchObject({
      reachability: 'inconclusive',
      basis: 'unsupported: this kernel has no SCTP',
    });
  });

  it.each<[string, Partial<ProbeHost>, string]>([
    [
      'the source pod is gone',
      { findNetns: async () => undefined },
      'source pod default/client is gone',
    ],
    [
      'the source pod is deleted while nmap runs',
      { stillThere: async () => false },
      'source pod default/client was deleted during the probe: what nmap saw proves nothing',
    ],
    [
      'the source pod cannot be checked after the scan',
      { stillThere: () => Promise.reject(new Error('EACCES')) },
      'was deleted during the probe',
    ],
    [
      'the source pod uses hostNetwork',
      {
        findNetns: async () => ({ uid: 'u-1', pid: 1, path: '/proc/1/ns/net', hostNetwork: true }),
      },
      'hostNetwork',
    ],
    [
      'nmap fails',
      {
        runNmap: async () => ({
          code: 1,
          signal: null,
          stdout: '',
          stderr: 'Failed to open device eth0',
          timedOut: false,
          durationMs: 3,
        }),
      },
      'nmap error: nmap exited with 1: Failed to open device eth0',
    ],
    [
      'nmap prints garbage',
      {
        runNmap: async () => ({
          code: 0,
          signal: null,
          stdout: '<<<',
          stderr: '',
          timedOut: false,
          durationMs: 3,
        }),
      },
      'nmap error:',
    ],
    [
      'nmap cannot be started',
      { runNmap: async () => Promise.reject(new Error('spawn nsenter ENOENT')) },
      'nmap error: spawn nsenter ENOENT',
    ],
  ] as const)(
    'makes every observation inconclusive when %s, without throwing',
    async (_name, override, basis) => {
      const result = await executeBatch(batch, settings, ports(override));
      expect(result.observations).toHaveLength(2);
      for (const o of result.observations) {
        expect(o.reachability).toBe('inconclusive');
        expect(o.basis).toContain(basis);
      }
    },
  );

  it.each([
    [
      'refuses',
      async () => Promise.resolve('namespace quiet opted out (lumen.dev/ignore=true)'),
      'refused: namespace quiet opted out (lumen.dev/ignore=true)',
    ],
    [
      'fails closed when the API cannot say',
      async () => Promise.reject(new Error('connect ECONNREFUSED')),
      'refused: the API could not check the source pod: Error: connect ECONNREFUSED',
    ],
  ])('%s a source the API does not vouch for, entering nothing', async (_what, refusal, basis) => {
    const calls: string[][] = [];
    let entered = false;
    const result = await executeBatch(
      batch,
      settings,
      ports(
        {
          findNetns: async () => {
            entered = true;
            return { uid: 'u-42', pid: 42, path: '/proc/42/ns/net', hostNetwork: false };
          },
        },
        calls,
      ),
      { refusal },
    );
    expect(result.observations.map((o) => [o.reachability, o.basis])).toEqual([
      ['inconclusive', basis],
      ['inconclusive', basis],
    ]);
    expect([entered, calls]).toEqual([false, []]);
  });

  it('probes from a source the API vouches for', async () => {
    const result = await executeBatch(batch, settings, ports(), {
      refusal: async () => Promise.resolve(undefined),
    });
    expect(result.observations[0]?.reachability).toBe('reachable');
  });

  it('refuses a batch meant for another node', async () => {
    const result = await executeBatch({ ...batch, node: 'node-b' }, settings, ports());
    expect(
      result.observations.every(
        (o) => o.basis === 'refused: the batch is for node node-b, this prober serves node-a',
      ),
    ).toBe(true);
  });
});
