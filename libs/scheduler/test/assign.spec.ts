import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ProbeBatchContract, decode, encode } from '#lumen/contracts';
import { NodeRateLimiter, assignBatches, type CaseToSchedule } from '#lumen/scheduler';

const pod = (name: string, node: string, n: number) => ({
  namespace: 'default',
  name,
  uid: `uid-${name}`,
  ip: `10.244.${n}.${n + 10}`,
  node,
});
const webA = pod('web-a', 'node-1', 1);
const webB = pod('web-b', 'node-2', 2);
const client = pod('client', 'node-1', 3);
const onNode3 = pod('batch', 'node-3', 4);

const kase = (
  caseId: string,
  sources: CaseToSchedule['sources'],
  destinations: CaseToSchedule['destinations'],
): CaseToSchedule => ({
  caseId,
  round: 4,
  sources,
  destinations,
  port: 80,
  protocol: 'TCP',
  listenerKnown: true,
});

const options = {
  liveNodes: new Set(['node-1', 'node-2']),
  rotation: 0,
  attempt: 1,
  maxTargetsPerBatch: 100,
  now: new Date('2026-11-26T05:00:00Z'),
};

describe('assignBatches', () => {
  it('makes one valid batch per node and source pod', () => {
    const { batches, unschedulable } = assignBatches(
      [
        kase('000000000000000a', [client], [webA, webB]),
        kase('000000000000000b', [client], [webB]),
      ],
      options,
    );
    expect(unschedulable).toEqual([]);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({
      node: 'node-1',
      source: { name: 'client', uid: 'uid-client' },
      attempt: 1,
    });
    expect(batches[0]!.targets.map((t) => t.caseId)).toEqual([
      '000000000000000a',
      '000000000000000b',
    ]);
    expect(batches[0]!.targets.map((t) => t.round)).toEqual([4, 4]);
    expect(decode(ProbeBatchContract, encode(ProbeBatchContract, batches[0]!)).ok).toBe(true);
  });

  it("sends a source class's cases of one call from one pod, so they share one nmap", () => {
    const other = pod('client-2', 'node-2', 5);
    const cases = Array.from({ length: 12 }, (_, i) =>
      kase(`00000000000000${(16 + i).toString(16)}`, [client, other], [webA, webB]),
    );
    for (const rotation of [0, 1]) {
      const { batches } = assignBatches(cases, { ...options, rotation });
      expect(batches).toHaveLength(1);
      expect(batches[0]!.targets).toHaveLength(12);
    }
    const sources = [0, 1].map(
      (rotation) => assignBatches(cases, { ...options, rotation }).batches[0]!.source.name,
    );
    expect(new Set(sources)).toEqual(new Set(['client', 'client-2']));
  });

  it('gives re-dispatched work and a new round a new batch id, so that JetStream does not drop it as a repeat', () => {
    const cases = [kase('000000000000000a', [client], [webA])];
    const first = assignBatches(cases, options).batches[0]!;
    const again = assignBatches(cases, options).batches[0]!;
    const redispatched = assignBatches(cases, { ...options, dispatch: 1 }).batches[0]!;
    const nextRound = assignBatches([{ ...cases[0]!, round: 5 }], options).batches[0]!;
    expect(again.batchId).toBe(first.batchId);
    expect(redispatched.batchId).not.toBe(first.batchId);
    expect(nextRound.batchId).not.toBe(first.batchId);
  });

  it('never probes a pod against itself while another pod of the class can serve', () => {
    for (let rotation = 0; rotation < 10; rotation++) {
      const [batch] = assignBatches([kase('000000000000000c', [webA, webB], [webA, webB])], {
        ...options,
        rotation,
      }).batches;
      expect(batch!.targets[0]!.destination?.name).not.toBe(batch!.source.name);
    }
  });

  it('probes a single pod against itself when it is the only one (loopback)', () => {
    const [batch] = assignBatches([kase('000000000000000d', [webA], [webA])], options).batches;
    expect(batch).toMatchObject({
      source: { name: 'web-a' },
      targets: [{ destination: { name: 'web-a' }, ip: webA.ip }],
    });
  });

  it('rotates the chosen pods between runs', () => {
    const chosen = new Set(
      Array.from(
        { length: 6 },
        (_, rotation) =>
          assignBatches([kase('000000000000000e', [webA, webB], [client])], {
            ...options,
            rotation,
          }).batches[0]!.source.name,
      ),
    );
    expect(chosen).toEqual(new Set(['web-a', 'web-b']));
  });

  it.each([
    [
      'no source pod runs',
      kase('000000000000000f', [], [webA]),
      'no running pod of the source class',
    ],
    [
      'no live prober on its node',
      kase('000000000000000f', [onNode3], [webA]),
      "no live prober on the source pods' nodes (node-3)",
    ],
    [
      'no destination pod runs',
      kase('000000000000000f', [client], []),
      'no running pod of the destination class',
    ],
  ])('reports a case as unschedulable when %s, never dropping it', (_name, c, reason) => {
    expect(assignBatches([c], options)).toEqual({
      batches: [],
      unschedulable: [{ caseId: '000000000000000f', reason }],
    });
  });

  it('accounts for every case exactly once, within the batch size (property)', () => {
    const pods = [webA, webB, client, onNode3];
    const cases = fc
      .array(
        fc
          .record({
            n: fc.integer({ min: 0, max: 0xffff }),
            sources: fc.subarray(pods),
            destinations: fc.subarray(pods),
          })
          .map(({ n, sources, destinations }) =>
            kase(n.toString(16).padStart(16, '0'), sources, destinations),
          ),
        { maxLength: 40 },
      )
      .map((list) => [...new Map(list.map((c) => [c.caseId, c])).values()]);
    fc.assert(
      fc.property(cases, fc.integer({ min: 1, max: 5 }), (list, max) => {
        const { batches, unschedulable } = assignBatches(list, {
          ...options,
          maxTargetsPerBatch: max,
        });
        const scheduled = batches.flatMap((b) => b.targets.map((t) => t.caseId));
        expect([...scheduled, ...unschedulable.map((u) => u.caseId)].sort()).toEqual(
          list.map((c) => c.caseId).sort(),
        );
        for (const b of batches) {
          expect(b.targets.length).toBeLessThanOrEqual(max);
          expect(options.liveNodes.has(b.node)).toBe(true);
        }
      }),
      { seed: 9, numRuns: 300 },
    );
  });
});

describe('NodeRateLimiter', () => {
  it('lets a burst through, then spaces batches per node', () => {
    let now = 0;
    const limiter = new NodeRateLimiter(2, 2, () => now);
    expect([limiter.take('n1'), limiter.take('n1'), limiter.take('n1')]).toEqual([0, 0, 500]);
    expect(limiter.take('n2')).toBe(0);
    now = 500;
    expect(limiter.take('n1')).toBe(0);
  });
});
