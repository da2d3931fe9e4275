import { afterEach, describe, expect, it } from '@jest/globals';
import {
  probeResultSubject,
  probeBatchSubject,
  type ProbeBatch,
  type ProbeResult,
  type ProberHeartbeat,
  type Reachability,
} from '#lumen/contracts';
import { parseCidr, type Cidr } from '#lumen/policy';
import {
  ProberWorker,
  defaultProberSettings,
  type Heartbeats,
  type ProbeHost,
  type ProberMetrics,
  type TargetScope,
} from '#lumen/prober';
import { InMemoryBus, RecordingLog, RecordingTracer } from '#lumen/testing';

const NODE = 'node-a';
const SOURCE_UID = '0f0f0f0f-0000-4000-8000-000000000001';
const TRACE = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01';

class FakeHeartbeats implements Heartbeats {
  readonly announced: ProberHeartbeat[] = [];
  readonly withdrawn: string[] = [];
  async announce(heartbeat: ProberHeartbeat): Promise<void> {
    this.announced.push(heartbeat);
  }
  async withdraw(node: string): Promise<void> {
    this.withdrawn.push(node);
  }
}

/** The node as nmap would see it: port 80 open on every target, whatever else is asked. */
function fakeHost(nmapCalls: string[][]): ProbeHost {
  let tick = 0;
  return {
    stillThere: async () => true,
    findNetns: async (uid) =>
      uid === SOURCE_UID
        ? { uid, pid: 42, path: '/proc/42/ns/net', hostNetwork: false }
        : undefined,
    runNmap: async (_netns, args) => {
      nmapCalls.push([...args]);
      const ips = args.filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
      const hosts = ips
        .map(
          (ip) =>
            `<host><address addr="${ip}" addrtype="ipv4"/><ports><port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/></port></ports></host>`,
        )
        .join('');
      return {
        code: 0,
        signal: null,
        stdout: `<?xml version="1.0"?><nmaprun>${hosts}<runstats><finished elapsed="0.1" exit="success"/></runstats></nmaprun>`,
        stderr: '',
      };
    },
    now: () => new Date(Date.UTC(2026, 10, 26, 5, 0, 0, (tick += 250))),
  };
}

const target = (caseId: string, ip: string) => ({
  caseId,
  round: 3,
  destination: { namespace: 'default', name: `web-${ip}` },
  ip,
  port: 80,
  protocol: 'TCP' as const,
  listenerKnown: true,
});

const batch: ProbeBatch = {
  batchId: 'batch-1',
  node: NODE,
  attempt: 2,
  source: { namespace: 'default', name: 'client', uid: SOURCE_UID },
  targets: [target('00000000000000b1', '10.244.1.2'), target('00000000000000b2', '192.168.7.7')],
  issuedAt: '2026-11-26T05:00:00Z',
  traces: { '00000000000000b1': TRACE },
};

const workers: ProberWorker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
});

async function startedWorker(targetScope?: () => TargetScope) {
  const bus = new InMemoryBus();
  const heartbeats = new FakeHeartbeats();
  const nmapCalls: string[][] = [];
  const probed: { node: string; reachabilities: readonly Reachability[]; ms: number }[] = [];
  const metrics: ProberMetrics = {
    batchProbed: (node, reachabilities, ms) => probed.push({ node, reachabilities, ms }),
  };
  const tracer = new RecordingTracer();
  const worker = new ProberWorker(
    {
      bus,
      heartbeats,
      host: fakeHost(nmapCalls),
      log: new RecordingLog(),
      tracer,
      metrics,
      ...(targetScope ? { targetScope } : {}),
    },
    {
      settings: defaultProberSettings(NODE, [parseCidr('10.244.0.0/16') as Cidr], false),
      instance: 'instance-1',
      version: 'test',
      heartbeatIntervalMs: 3_600_000,
      concurrency: 1,
    },
  );
  workers.push(worker);
  await worker.start();
  return { bus, heartbeats, nmapCalls, probed, tracer, worker };
}

describe('ProberWorker', () => {
  it('consumes only its node’s batches and announces itself', async () => {
    const { bus, heartbeats, worker } = await startedWorker();
    expect(worker.consuming).toBe(true);
    // Bound to the consumer the scheduler makes: a prober manages none (ADR 0014).
    expect(bus.consumers.map((c) => [c.filterSubject, c.durable, c.bind])).toEqual([
      [probeBatchSubject(NODE), 'prober-node-a', true],
    ]);
    expect(heartbeats.announced).toEqual([
      expect.objectContaining({ node: NODE, instance: 'instance-1', inFlight: 0 }),
    ]);
  });

  it('turns a batch into observations with evidence, refusing targets outside the pod CIDRs', async () => {
    const { bus, nmapCalls, probed, tracer } = await startedWorker();
    await bus.deliver(probeBatchSubject(NODE), batch, undefined);

    expect(nmapCalls).toHaveLength(1);
    expect(nmapCalls[0]).toContain('10.244.1.2');
    expect(nmapCalls[0]).not.toContain('192.168.7.7');
    const [result] = bus.on<ProbeResult>(probeResultSubject(NODE));
    expect(bus.messages.at(-1)?.options.msgId).toBe('batch-1/2');
    expect(result).toMatchObject({
      batchId: 'batch-1',
      node: NODE,
      attempt: 2,
      // The batch's place in its stream (the fake bus counts deliveries), for the reporter.
      batchSequence: 1,
      source: { namespace: 'default', name: 'client' },
      observations: [
        {
          caseId: '00000000000000b1',
          round: 3,
          reachability: 'reachable',
          evidence: { state: 'open', reason: 'syn-ack', reasonTtl: 64 },
        },
        {
          caseId: '00000000000000b2',
          round: 3,
          reachability: 'inconclusive',
          basis: 'refused: 192.168.7.7 is outside the pod CIDRs',
        },
      ],
    });
    expect(result!.command?.slice(0, 3)).toEqual(['nsenter', '--net=/proc/42/ns/net', 'nmap']);
    // Each case keeps its own trace through the batch.
    expect(result!.traces?.['00000000000000b1']).toMatch(/^00-0123456789abcdef0123456789abcdef-/);
    expect(tracer.spans.map((s) => s.parent)).toEqual([TRACE, undefined]);
    expect(tracer.spans.every((s) => s.ended)).toBe(true);
    expect(probed).toEqual([
      { node: NODE, reachabilities: ['reachable', 'inconclusive'], ms: result!.durationMs },
    ]);
  });

  it('aims within the scope the nodes give at the time of each batch, not the one at boot', async () => {
    let scope: TargetScope = {
      podCidrs: [parseCidr('10.244.0.0/16') as Cidr],
      refusedAddresses: [],
    };
    const { bus, nmapCalls } = await startedWorker(() => scope);
    await bus.deliver(probeBatchSubject(NODE), batch, undefined);
    expect(nmapCalls.at(-1)).toContain('10.244.1.2');
    // A new node's pod CIDR, and 10.244.1.2 turned out to be a node's address.
    scope = {
      podCidrs: [parseCidr('10.244.0.0/16') as Cidr, parseCidr('192.168.0.0/16') as Cidr],
      refusedAddresses: ['10.244.1.2'],
    };
    await bus.deliver(probeBatchSubject(NODE), { ...batch, batchId: 'batch-2' }, undefined);
    expect(nmapCalls.at(-1)).toContain('192.168.7.7');
    expect(nmapCalls.at(-1)).not.toContain('10.244.1.2');
    const [, second] = bus.on<ProbeResult>(probeResultSubject(NODE));
    expect(second?.observations[0]).toMatchObject({
      reachability: 'inconclusive',
      basis: 'refused: 10.244.1.2 is an address of a node',
    });
  });

  it('answers for a source pod that is gone with inconclusive observations, not an error', async () => {
    const { bus } = await startedWorker();
    await bus.deliver(probeBatchSubject(NODE), {
      ...batch,
      source: { ...batch.source, uid: '0f0f0f0f-0000-4000-8000-0000000000ff' },
    });
    const [result] = bus.on<ProbeResult>(probeResultSubject(NODE));
    expect(result!.observations.map((o) => [o.reachability, o.basis])).toEqual([
      ['inconclusive', expect.stringContaining('source pod default/client is gone')],
      ['inconclusive', expect.stringContaining('source pod default/client is gone')],
    ]);
  });

  it('dead-letters a batch for another node, naming both, and probes nothing', async () => {
    const { bus, nmapCalls } = await startedWorker();
    const outcome = await bus.deliver(probeBatchSubject(NODE), { ...batch, node: 'node-b' });
    expect(outcome).toEqual({
      rejectReason: "batch batch-1 is for node node-b, not this prober's node-a",
    });
    expect(nmapCalls).toHaveLength(0);
    expect(bus.messages).toEqual([]);
  });

  it('stops consuming and withdraws its heartbeat, so its work is re-dispatched at once', async () => {
    const { bus, heartbeats, worker } = await startedWorker();
    await worker.stop();
    expect(worker.consuming).toBe(false);
    expect(bus.consumers).toEqual([]);
    expect(heartbeats.withdrawn).toEqual([NODE]);
  });
});
