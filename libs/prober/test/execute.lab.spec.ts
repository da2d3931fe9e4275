import { afterAll, expect, it } from '@jest/globals';
import { ProbeResultContract, decode, encode, type ProbeBatch } from '#lumen/contracts';
import { parseCidr, podKey } from '#lumen/policy';
import { conformanceScenarioFiles } from '#lumen/testing';
import { executeBatch, hostProbeHost, type ProberSettings } from '#lumen/prober';
import { podOf, scenario, upLab, type TestLab } from '../../lab/test/support.js';

const file = conformanceScenarioFiles().find((f) =>
  f.endsWith('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
)!;
let lab: TestLab | undefined;

/** A prober's settings for the lab's nodes, with a given nmap host timeout. */
const labSettings = (node: string, hostTimeoutMs: number): ProberSettings => ({
  node,
  podCidrs: [parseCidr('10.244.0.0/16')!],
  serviceCidrs: [parseCidr('10.96.0.0/16')!],
  protocols: ['TCP', 'UDP'],
  portRanges: [{ from: 1, to: 65535 }],
  sctpSupported: false,
  tcpScan: 'syn',
  maxRttTimeoutMs: 300,
  hostTimeoutMs,
  maxRate: 1000,
  maxTargetsPerBatch: 1000,
  refusedAddresses: [],
});
afterAll(async () => {
  await lab?.down();
});

it('probes a batch from inside the source pod, found through /proc by its UID, with real nmap', async () => {
  const { expectations } = scenario(file);
  lab = await upLab('probing', file);
  const status = lab.status;
  const bySource = new Map<string, typeof expectations>();
  for (const row of expectations)
    bySource.set(podKey(row.from), [...(bySource.get(podKey(row.from)) ?? []), row]);
  for (const rows of bySource.values()) {
    const source = podOf(status, rows[0]!.from);
    const batch: ProbeBatch = {
      batchId: `b-${source.name}`,
      node: source.node,
      attempt: 1,
      source: { namespace: source.namespace, name: source.name, uid: source.uid },
      targets: rows.map((row, i) => ({
        caseId: i.toString(16).padStart(16, '0'),
        round: 1,
        destination: row.to,
        ip: podOf(status, row.to).ip,
        port: row.port,
        protocol: row.protocol,
        listenerKnown: true,
      })),
      issuedAt: new Date().toISOString(),
    };
    const result = await executeBatch(
      batch,
      labSettings(source.node, 30_000),
      hostProbeHost(60_000),
    );
    // As the prober sends it, with the batch's place in its stream.
    const sent = { ...result, batchSequence: 1 };
    expect(decode(ProbeResultContract, encode(ProbeResultContract, sent)).ok).toBe(true);
    expect(result.observations.map((o) => o.reachability)).toEqual(
      rows.map((r) => (r.allowed ? 'reachable' : 'blocked')),
    );
    expect(result.command?.filter((part) => part === 'nmap')).toHaveLength(1);
  }
});

it('makes every observation inconclusive when the source pod is deleted while nmap runs, never blocked', async () => {
  const { expectations } = scenario(file);
  lab ??= await upLab('probing', file);
  const status = await lab.refresh();
  // A destination the source may not reach: its ports are dropped, so nmap waits on each.
  const denied = expectations.find((row) => !row.allowed)!;
  const source = podOf(status, denied.from);
  const destination = podOf(status, denied.to);
  const batch: ProbeBatch = {
    batchId: 'b-deleted',
    node: source.node,
    attempt: 1,
    source: { namespace: source.namespace, name: source.name, uid: source.uid },
    // The denied port, which would read as "blocked" once the pod's network is gone; and
    // dropped UDP ports, which keep nmap busy for seconds: time enough to delete the pod.
    targets: [
      {
        caseId: '0000000000000d00',
        round: 1,
        destination: denied.to,
        ip: destination.ip,
        port: denied.port,
        protocol: denied.protocol,
        listenerKnown: true,
      },
      ...Array.from({ length: 200 }, (_, i) => ({
        caseId: (0xd01 + i).toString(16).padStart(16, '0'),
        round: 1,
        destination: denied.to,
        ip: destination.ip,
        port: 20_000 + i,
        protocol: 'UDP' as const,
        listenerKnown: false,
      })),
    ],
    issuedAt: new Date().toISOString(),
  };
  const probing = executeBatch(batch, labSettings(source.node, 60_000), hostProbeHost(120_000));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await lab.client.send('DELETE', `/api/v1/namespaces/${source.namespace}/pods/${source.name}`);
  const result = await probing;
  expect(new Set(result.observations.map((o) => o.reachability))).toEqual(
    new Set(['inconclusive']),
  );
  expect(result.observations[0]?.basis).toBe(
    `source pod ${source.namespace}/${source.name} was deleted during the probe: what nmap saw proves nothing`,
  );
});
