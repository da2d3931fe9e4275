import { describe, expect, it } from '@jest/globals';
import { probeBatchSubject, probeResultSubject, type ProbeResult } from '#lumen/contracts';
import { batchAnsweredBy } from '#lumen/testing';
import { ResultGate, resultMismatch, type StoredBatch } from '../src/result-gate.js';

const result: ProbeResult = {
  batchId: 'b-1',
  node: 'node-a',
  attempt: 1,
  batchSequence: 40,
  source: { namespace: 'default', name: 'client' },
  observations: [
    {
      caseId: '00000000000000a1',
      round: 2,
      destination: { namespace: 'default', name: 'web' },
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP',
      reachability: 'blocked',
      basis: 'dropped',
    },
  ],
  startedAt: '2026-12-01T10:00:00.000Z',
  durationMs: 5,
};
const dispatched: StoredBatch = {
  subject: probeBatchSubject('node-a'),
  batch: batchAnsweredBy(result),
};
const withBatch = (change: Partial<Exclude<StoredBatch, 'invalid'>['batch']>): StoredBatch => ({
  subject: probeBatchSubject('node-a'),
  batch: { ...batchAnsweredBy(result), ...change },
});
const observation = result.observations[0]!;

describe('resultMismatch', () => {
  it('accepts a result that answers the batch dispatched to its node', () => {
    expect(resultMismatch(result, probeResultSubject('node-a'), dispatched)).toBeUndefined();
  });

  it.each<[string, ProbeResult, string, StoredBatch | undefined, RegExp]>([
    [
      'a result naming another node than its subject',
      { ...result, node: 'node-b' },
      probeResultSubject('node-a'),
      dispatched,
      /result for node node-b arrived on lumen\.v1\.results\.node-a/,
    ],
    [
      'a sequence the stream does not hold',
      result,
      probeResultSubject('node-a'),
      undefined,
      /no dispatched batch at sequence 40/,
    ],
    [
      'a sequence that holds something else',
      result,
      probeResultSubject('node-a'),
      'invalid',
      /does not hold a probe batch/,
    ],
    [
      'a batch dispatched to another node (a prober answering a batch it read elsewhere)',
      result,
      probeResultSubject('node-a'),
      {
        subject: probeBatchSubject('node-b'),
        batch: { ...batchAnsweredBy(result), node: 'node-b' },
      },
      /dispatched to node node-b, not node-a/,
    ],
    [
      'another batch id',
      result,
      probeResultSubject('node-a'),
      withBatch({ batchId: 'b-2' }),
      /holds batch b-2 attempt 1, not b-1 attempt 1/,
    ],
    [
      'another attempt',
      result,
      probeResultSubject('node-a'),
      withBatch({ attempt: 2 }),
      /holds batch b-1 attempt 2/,
    ],
    [
      'another source pod',
      result,
      probeResultSubject('node-a'),
      withBatch({ source: { namespace: 'default', name: 'other', uid: 'u' } }),
      /probes from default\/other, not default\/client/,
    ],
    [
      'a block the batch is not part of',
      { ...result, blockId: 'blk-1' },
      probeResultSubject('node-a'),
      dispatched,
      /belongs to block \(none\), not blk-1/,
    ],
    [
      'an observation of a port the batch did not ask for',
      { ...result, observations: [{ ...observation, port: 443 }] },
      probeResultSubject('node-a'),
      dispatched,
      /observation of 00000000000000a1 \(10\.244\.1\.2:443\/TCP\) answers no target/,
    ],
    [
      'an expected verdict the batch did not carry (a rotation cell forged into a case)',
      { ...result, observations: [{ ...observation, expected: 'deny' }] },
      probeResultSubject('node-a'),
      dispatched,
      /answers no target/,
    ],
    [
      'the same target answered twice',
      { ...result, observations: [observation, observation] },
      probeResultSubject('node-a'),
      dispatched,
      /answered twice in one result/,
    ],
  ])('refuses %s', (_, given, subject, stored, why) => {
    expect(resultMismatch(given, subject, stored)).toMatch(why);
  });
});

describe('ResultGate', () => {
  const gate = (stored: StoredBatch | undefined) =>
    new ResultGate({ batchAt: () => Promise.resolve(stored) }, { rememberAnswered: 2 });

  it('admits a first answer, refuses a second one, and lets a redelivery of the first through unjudged', async () => {
    const g = gate(dispatched);
    expect(await g.admit(result, probeResultSubject('node-a'), 1)).toBeUndefined();
    expect(await g.admit(result, probeResultSubject('node-a'), 1)).toEqual({
      rejectReason: 'batch b-1 attempt 1 was answered already',
    });
    expect(await g.admit(result, probeResultSubject('node-a'), 2)).toBe('duplicate');
  });

  it('admits an answer again after judging it failed and it was released', async () => {
    const g = gate(dispatched);
    expect(await g.admit(result, probeResultSubject('node-a'), 1)).toBeUndefined();
    g.release(result);
    expect(await g.admit(result, probeResultSubject('node-a'), 2)).toBeUndefined();
  });

  it('rejects with the reason, and remembers only a bounded number of answered batches', async () => {
    expect(await gate(undefined).admit(result, probeResultSubject('node-a'), 1)).toEqual({
      rejectReason: expect.stringContaining('no dispatched batch'),
    });
    const g = new ResultGate(
      { batchAt: (seq) => Promise.resolve(withBatch({ batchId: `b-${seq}` })) },
      { rememberAnswered: 2 },
    );
    for (const seq of [1, 2, 3])
      expect(
        await g.admit(
          { ...result, batchId: `b-${seq}`, batchSequence: seq },
          probeResultSubject('node-a'),
          1,
        ),
      ).toBeUndefined();
    // b-1 was forgotten (the oldest), b-3 is remembered.
    expect(
      await g.admit(
        { ...result, batchId: 'b-1', batchSequence: 1 },
        probeResultSubject('node-a'),
        1,
      ),
    ).toBeUndefined();
    expect(
      await g.admit(
        { ...result, batchId: 'b-3', batchSequence: 3 },
        probeResultSubject('node-a'),
        1,
      ),
    ).toEqual({ rejectReason: expect.stringContaining('answered already') });
  });
});
