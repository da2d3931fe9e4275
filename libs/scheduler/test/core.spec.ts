import { describe, expect, it } from '@jest/globals';
import {
  CASE_UNSCHEDULABLE_SUBJECT,
  probeBatchSubject,
  type CaseUnschedulable,
  type CellBlock,
  type PodEndpoint,
  type ProbeBatch,
  type ProberHeartbeat,
  type ReprobeRequest,
} from '#lumen/contracts';
import {
  SCHEDULER_DEFAULTS,
  SchedulerCore,
  type LiveProbers,
  type SchedulerMetrics,
  type SchedulerSettings,
} from '#lumen/scheduler';
import {
  InMemoryBus,
  ManualClock,
  RecordingLog,
  RecordingTracer,
  podEndpointFixture,
  testCaseFixture,
} from '#lumen/testing';

/** Live probers as the test says: node → instance. */
class FakeProbers implements LiveProbers {
  nodes = new Map<string, string>();
  constructor(...nodes: string[]) {
    for (const n of nodes) this.nodes.set(n, `instance-${n}`);
  }
  async live(now: Date): Promise<ReadonlyMap<string, ProberHeartbeat>> {
    return new Map(
      [...this.nodes].map(([node, instance]) => [
        node,
        { node, instance, version: 'test', at: now.toISOString(), inFlight: 0 },
      ]),
    );
  }
}

const clientA = podEndpointFixture('client-a', 'node-a', 1);
const clientB = podEndpointFixture('client-b', 'node-b', 2);
const webA = podEndpointFixture('web-a', 'node-a', 3);
const webB = podEndpointFixture('web-b', 'node-b', 4);
const caseIds = ['00000000000000a1', '00000000000000a2', '00000000000000a3'] as const;

function scheduler(
  probers: FakeProbers,
  settings: Partial<SchedulerSettings> = {},
): {
  core: SchedulerCore;
  bus: InMemoryBus;
  clock: ManualClock;
  log: RecordingLog;
  queues: { inFlight: Map<string, number>; waiting: number }[];
  unschedulableCount: () => number;
} {
  const bus = new InMemoryBus();
  const clock = new ManualClock();
  const log = new RecordingLog();
  const queues: { inFlight: Map<string, number>; waiting: number }[] = [];
  let unschedulable = 0;
  const metrics: SchedulerMetrics = {
    queues: (inFlight, waiting) => queues.push({ inFlight: new Map(inFlight), waiting }),
    unschedulable: () => (unschedulable += 1),
  };
  const core = new SchedulerCore(
    { bus, probers, clock, log, tracer: new RecordingTracer(), metrics },
    { ...SCHEDULER_DEFAULTS, gatherMs: 0, startupGraceMs: 0, burstPerNode: 1000, ...settings },
  );
  return { core, bus, clock, log, queues, unschedulableCount: () => unschedulable };
}

const batchesTo = (bus: InMemoryBus, node: string): ProbeBatch[] =>
  bus.on<ProbeBatch>(probeBatchSubject(node));

describe('SchedulerCore', () => {
  it('cuts cases into one batch per node and source pod, for live probers only, and acks them', async () => {
    const { core, bus } = scheduler(new FakeProbers('node-a', 'node-b'));
    const acks = await Promise.all([
      core.onCase(testCaseFixture(caseIds[0], [clientA], [webB]), undefined),
      core.onCase(testCaseFixture(caseIds[1], [clientA], [webA, webB]), undefined),
      core.onCase(testCaseFixture(caseIds[2], [clientB], [webA]), undefined),
    ]);
    expect(acks).toEqual([undefined, undefined, undefined]);
    const [onA] = batchesTo(bus, 'node-a');
    const [onB] = batchesTo(bus, 'node-b');
    expect(batchesTo(bus, 'node-a')).toHaveLength(1);
    expect(batchesTo(bus, 'node-b')).toHaveLength(1);
    expect(onA).toMatchObject({ node: 'node-a', attempt: 1, source: { name: 'client-a' } });
    expect(onA!.targets.map((t) => t.caseId).sort()).toEqual([caseIds[0], caseIds[1]]);
    expect(onB).toMatchObject({ source: { name: 'client-b' }, targets: [{ caseId: caseIds[2] }] });
    // Every target carries the case's round, and the batch id deduplicates a retry.
    expect(onA!.targets.every((t) => t.round === 7)).toBe(true);
    expect(bus.messages.every((m) => m.options.msgId !== undefined)).toBe(true);
  });

  it('probes a case once when two copies of it wait together, the newest round, and acks both', async () => {
    // A newer round came while the older waited, or JetStream delivered the case again.
    const { core, bus } = scheduler(new FakeProbers('node-a'));
    const kase = testCaseFixture(caseIds[0], [clientA], [webA]);
    const acks = await Promise.all([
      core.onCase({ ...kase, generation: 7 }, undefined),
      core.onCase({ ...kase, generation: 8 }, undefined),
      core.onCase({ ...kase, generation: 8 }, undefined),
    ]);
    expect(acks).toEqual([undefined, undefined, undefined]);
    const batches = batchesTo(bus, 'node-a');
    expect(batches).toHaveLength(1);
    expect(batches[0]!.targets.map((t) => [t.caseId, t.round])).toEqual([[caseIds[0], 8]]);
  });

  it('rotates the source and destination pods of a class between dispatches', async () => {
    const { core, bus } = scheduler(new FakeProbers('node-a', 'node-b'));
    const kase = testCaseFixture(caseIds[0], [clientA, clientB], [webA, webB]);
    const picks = new Set<string>();
    for (let round = 1; round <= 4; round += 1) {
      await core.onCase({ ...kase, generation: round }, undefined);
      const batch = bus.messages.at(-1)!.value as ProbeBatch;
      picks.add(`${batch.source.name}→${batch.targets[0]!.destination?.name}`);
    }
    expect(picks.size).toBeGreaterThan(1);
  });

  it.each([
    [
      'no pod of the source class runs',
      testCaseFixture(caseIds[0], [], [webA]),
      'no running pod of the source class',
    ],
    [
      'no prober lives on the source pods’ nodes',
      testCaseFixture(caseIds[0], [podEndpointFixture('c', 'node-z', 9)], [webA]),
      "no live prober on the source pods' nodes (node-z)",
    ],
    [
      'no pod of the destination class runs',
      testCaseFixture(caseIds[0], [clientA], []),
      'no running pod of the destination class',
    ],
  ])('reports a case nobody can take when %s, with the reason', async (_why, kase, reason) => {
    const { core, bus, unschedulableCount } = scheduler(new FakeProbers('node-a'));
    await core.onCase(kase, undefined);
    expect(bus.on<CaseUnschedulable>(CASE_UNSCHEDULABLE_SUBJECT)).toEqual([
      expect.objectContaining({ caseId: caseIds[0], round: 7, attempt: 1, reason }),
    ]);
    expect(unschedulableCount()).toBe(1);
    expect(bus.messages).toHaveLength(1);
  });

  it('waits for probers to announce themselves during the start-up grace instead of giving up', async () => {
    const { core, bus } = scheduler(new FakeProbers(), { startupGraceMs: 60_000 });
    const ack = await core.onCase(testCaseFixture(caseIds[0], [clientA], [webA]), undefined);
    expect(ack).toEqual({ deferMs: 1000 });
    expect(bus.messages).toEqual([]);
  });

  it('holds work for a node whose prober has not announced itself yet during the grace, and dispatches the rest', async () => {
    // node-b's prober is still starting: its case waits, node-a's goes out.
    const { core, bus, clock, unschedulableCount } = scheduler(new FakeProbers('node-a'), {
      startupGraceMs: 15_000,
    });
    const [onA, onB] = await Promise.all([
      core.onCase(testCaseFixture(caseIds[0], [clientA], [webB]), undefined),
      core.onCase(testCaseFixture(caseIds[1], [clientB], [webA]), undefined),
    ]);
    expect(onA).toBeUndefined();
    expect(onB).toEqual({ deferMs: 1000 });
    expect(batchesTo(bus, 'node-a')).toHaveLength(1);
    expect(bus.on(CASE_UNSCHEDULABLE_SUBJECT)).toEqual([]);
    // After the grace, a node still without a prober is what it is: unschedulable.
    clock.advance(15_000);
    expect(await core.onCase(testCaseFixture(caseIds[1], [clientB], [webA]), undefined)).toBe(
      undefined,
    );
    expect(bus.on<CaseUnschedulable>(CASE_UNSCHEDULABLE_SUBJECT)).toEqual([
      expect.objectContaining({ caseId: caseIds[1] }),
    ]);
    expect(unschedulableCount()).toBe(1);
  });

  it('defers a re-probe until it is due, then dispatches it with its attempt', async () => {
    const { core, bus, clock } = scheduler(new FakeProbers('node-a'));
    const request: ReprobeRequest = {
      caseId: caseIds[0],
      round: 7,
      attempt: 2,
      notBefore: new Date(clock.now().getTime() + 5000).toISOString(),
      reason: 'mismatch: confirming',
      sources: [clientA],
      destinations: [webA],
      port: 80,
      protocol: 'TCP',
      listenerKnown: true,
    };
    expect(await core.onReprobe(request, undefined)).toEqual({ deferMs: 5000 });
    expect(bus.messages).toEqual([]);
    clock.advance(5000);
    expect(await core.onReprobe(request, undefined)).toBeUndefined();
    expect(batchesTo(bus, 'node-a')).toEqual([
      expect.objectContaining({ attempt: 2, targets: [expect.objectContaining({ round: 7 })] }),
    ]);
  });

  describe('work held by a prober that goes silent', () => {
    const dispatchOne = async (probers: FakeProbers) => {
      const s = scheduler(probers, { redispatchAfterMs: 60_000 });
      await s.core.onCase(testCaseFixture(caseIds[0], [clientA, clientB], [webA]), undefined);
      return { ...s, first: s.bus.messages.at(-1)!.value as ProbeBatch };
    };

    it('is dispatched again, under a new batch id, to a node whose prober lives', async () => {
      const probers = new FakeProbers('node-a', 'node-b');
      const { core, bus, first } = await dispatchOne(probers);
      probers.nodes.delete(first.node);
      expect(await core.redispatchSilent()).toBe(1);
      const again = bus.messages.at(-1)!.value as ProbeBatch;
      expect(again.node).not.toBe(first.node);
      expect(again.batchId).not.toBe(first.batchId);
      expect(again.targets.map((t) => t.caseId)).toEqual([caseIds[0]]);
    });

    type Change = (probers: FakeProbers, node: string, clock: ManualClock) => void;
    it.each<[string, Change]>([
      [
        'its prober restarted',
        (probers, node) => {
          probers.nodes.set(node, 'new');
        },
      ],
      [
        'no result came in time',
        (_probers, _node, clock) => {
          clock.advance(60_001);
        },
      ],
    ])('is dispatched again when %s', async (_why, change) => {
      const probers = new FakeProbers('node-a', 'node-b');
      const { core, clock, first, log } = await dispatchOne(probers);
      change(probers, first.node, clock);
      expect(await core.redispatchSilent()).toBe(1);
      expect(log.warnings()).toContain('re-dispatching a batch whose prober went silent');
    });

    it('is left alone once its result came back', async () => {
      const probers = new FakeProbers('node-a', 'node-b');
      const { core, first, queues } = await dispatchOne(probers);
      core.reportQueues();
      expect(queues.at(-1)).toEqual({ inFlight: new Map([[first.node, 1]]), waiting: 0 });
      core.onResult({ batchId: first.batchId });
      probers.nodes.clear();
      expect(await core.redispatchSilent()).toBe(0);
      core.reportQueues();
      expect(queues.at(-1)).toEqual({ inFlight: new Map(), waiting: 0 });
    });

    it('is reported unschedulable after maxDispatches re-dispatches', async () => {
      const probers = new FakeProbers('node-a', 'node-b');
      const { core, bus, clock } = await dispatchOne(probers);
      for (let i = 0; i < SCHEDULER_DEFAULTS.maxDispatches; i += 1) {
        clock.advance(60_001);
        await core.redispatchSilent();
      }
      expect(bus.on(CASE_UNSCHEDULABLE_SUBJECT)).toEqual([]);
      clock.advance(60_001);
      await core.redispatchSilent();
      expect(bus.on<CaseUnschedulable>(CASE_UNSCHEDULABLE_SUBJECT)).toEqual([
        expect.objectContaining({
          caseId: caseIds[0],
          reason: `no prober answered after ${SCHEDULER_DEFAULTS.maxDispatches + 1} dispatches`,
        }),
      ]);
    });
  });

  it('holds work, unacked, while a node has its fill of batches, and dispatches it as results come back', async () => {
    const { core, bus } = scheduler(new FakeProbers('node-a'), {
      maxBatchesInFlightPerNode: 1,
    });
    const other = podEndpointFixture('client-c', 'node-a', 5);
    const first = core.onCase(testCaseFixture(caseIds[0], [clientA], [webA]), undefined);
    await expect(first).resolves.toBeUndefined();
    let acked = false;
    const second = core
      .onCase(testCaseFixture(caseIds[1], [other], [webA]), undefined)
      .then((outcome) => {
        acked = true;
        return outcome;
      });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(batchesTo(bus, 'node-a')).toHaveLength(1);
    expect(acked).toBe(false);
    core.onResult({ batchId: batchesTo(bus, 'node-a')[0]!.batchId });
    await expect(second).resolves.toBeUndefined();
    expect(batchesTo(bus, 'node-a')).toHaveLength(2);
    expect(batchesTo(bus, 'node-a')[1]!.source.name).toBe('client-c');
  });

  describe('cell blocks (ADR 0013)', () => {
    const block = (sources: PodEndpoint[], blockId = 'block-1'): CellBlock => ({
      blockId,
      generation: 9,
      source: { namespace: 'default', classKey: 'client' },
      sources,
      destinations: [
        { namespace: 'default', pods: [webA, webB] },
        { namespace: 'default', pods: [clientA] },
      ],
      cells: [
        { cellId: caseIds[0], destination: 0, port: 80, protocol: 'TCP', expected: 'allow' },
        { cellId: caseIds[1], destination: 0, port: 53, protocol: 'UDP', expected: 'deny' },
        { cellId: caseIds[2], destination: 1, port: 8080, protocol: 'TCP', expected: 'deny' },
      ],
    });

    it('sends a block whole as one batch from a live source pod, targets carrying the expected verdict', async () => {
      const { core, bus, unschedulableCount } = scheduler(new FakeProbers('node-b'));
      await expect(core.onBlock(block([clientA, clientB]))).resolves.toBeUndefined();
      expect(batchesTo(bus, 'node-a')).toEqual([]);
      const [batch] = batchesTo(bus, 'node-b');
      expect(batchesTo(bus, 'node-b')).toHaveLength(1);
      expect(batch).toMatchObject({ blockId: 'block-1', attempt: 1, source: { name: 'client-b' } });
      expect(
        batch!.targets.map((t) => [t.caseId, t.round, t.port, t.protocol, t.expected]),
      ).toEqual([
        [caseIds[0], 9, 80, 'TCP', 'allow'],
        [caseIds[1], 9, 53, 'UDP', 'deny'],
        [caseIds[2], 9, 8080, 'TCP', 'deny'],
      ]);
      // The only pod of the third destination class is another pod than the source.
      expect(batch!.targets[2]!.destination?.name).toBe('client-a');
      expect(batch!.targets.every((t) => t.listenerKnown)).toBe(true);
      expect(unschedulableCount()).toBe(0);
    });

    it('holds a block, unacked, while its nodes have their fill, and sends it when a result comes back', async () => {
      const { core, bus } = scheduler(new FakeProbers('node-a'), { maxBatchesInFlightPerNode: 1 });
      await core.onBlock(block([clientA], 'block-1'));
      let acked = false;
      const second = core.onBlock(block([clientA], 'block-2')).then(() => (acked = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(acked).toBe(false);
      expect(batchesTo(bus, 'node-a').map((b) => b.blockId)).toEqual(['block-1']);
      core.onResult({ batchId: batchesTo(bus, 'node-a')[0]!.batchId });
      await second;
      expect(batchesTo(bus, 'node-a').map((b) => b.blockId)).toEqual(['block-1', 'block-2']);
    });

    it('acks a block no live prober can take without a case unschedulable per cell, and says so', async () => {
      const { core, bus, log, unschedulableCount } = scheduler(new FakeProbers('node-b'));
      await expect(core.onBlock(block([clientA]))).resolves.toBeUndefined();
      expect(bus.messages).toEqual([]);
      expect(unschedulableCount()).toBe(0);
      expect(log.warnings().some((m) => m.includes('cell block unschedulable'))).toBe(true);
    });
  });

  it('hands back what is still gathering when it stops (JetStream delivers it again)', async () => {
    const { core } = scheduler(new FakeProbers('node-a'), { gatherMs: 60_000 });
    const pending = core.onCase(testCaseFixture(caseIds[0], [clientA], [webA]), undefined);
    core.stop();
    await expect(pending).rejects.toThrow('scheduler stopping');
  });
});
