import {
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  type Contract,
  type ProbeBatch,
  type ProbeResult,
} from '#lumen/contracts';

/** A bus that says where it stored what it published (MessageBus). */
export interface SequencedPublisher {
  publishSequenced<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options?: { msgId?: string; traceparent?: string },
  ): Promise<number>;
}

/** A prober's answer of one reachable observation, before it knows its batch's sequence. */
export function probeResultFixture(
  overrides: Partial<Omit<ProbeResult, 'batchSequence'>> = {},
): Omit<ProbeResult, 'batchSequence'> {
  return {
    batchId: 'b-1',
    node: 'node-a',
    attempt: 1,
    source: { namespace: 'default', name: 'client' },
    observations: [
      {
        caseId: '00000000000000c1',
        round: 1,
        ip: '10.244.1.2',
        port: 80,
        protocol: 'TCP',
        reachability: 'reachable',
        basis: 'open (syn-ack)',
      },
    ],
    startedAt: '2026-12-02T10:00:00.000Z',
    durationMs: 10,
    ...overrides,
  };
}

/** The batch a result answers, as the scheduler would have dispatched it. */
export function batchAnsweredBy(result: Omit<ProbeResult, 'batchSequence'>): ProbeBatch {
  return {
    batchId: result.batchId,
    node: result.node,
    attempt: result.attempt,
    source: { ...result.source, uid: `uid-${result.source.name}` },
    targets: result.observations.map((o) => ({
      caseId: o.caseId,
      round: o.round,
      destination: o.destination ?? { namespace: 'unknown', name: 'unknown' },
      ip: o.ip,
      port: o.port,
      protocol: o.protocol,
      listenerKnown: false,
      ...(o.expected ? { expected: o.expected } : {}),
    })),
    issuedAt: result.startedAt,
    ...(result.blockId ? { blockId: result.blockId } : {}),
  };
}

/**
 * Plays the scheduler and a node's prober for a test or a benchmark that feeds the reporter
 * results: dispatches the batch the result answers, then publishes the result on its
 * node's subject, naming that batch's sequence, as a prober does.
 */
export async function dispatchAndAnswer(
  bus: SequencedPublisher,
  result: Omit<ProbeResult, 'batchSequence'>,
  options: { traceparent?: string } = {},
): Promise<ProbeResult> {
  const batchSequence = await bus.publishSequenced(
    probeBatchSubject(result.node),
    ProbeBatchContract,
    batchAnsweredBy(result),
    { msgId: `${result.batchId}/${result.attempt}/batch` },
  );
  const answered = { ...result, batchSequence };
  await bus.publishSequenced(probeResultSubject(result.node), ProbeResultContract, answered, {
    msgId: `${result.batchId}/${result.attempt}`,
    ...options,
  });
  return answered;
}
