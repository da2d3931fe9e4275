import {
  nodeOfResultSubject,
  probeBatchSubject,
  reject,
  type ProbeBatch,
  type ProbeResult,
  type Rejection,
} from '#lumen/contracts';

/**
 * A batch as the scheduler dispatched it, read back from its stream by sequence:
 * `undefined` when the stream no longer holds it, `invalid` when what it holds there is not
 * a batch.
 */
export type StoredBatch = { readonly subject: string; readonly batch: ProbeBatch } | 'invalid';

/** Where dispatched batches are read back; the probes stream (libs/messaging) is the real one. */
export interface DispatchedBatches {
  batchAt(sequence: number): Promise<StoredBatch | undefined>;
}

const targetKey = (t: {
  caseId: string;
  ip: string;
  port: number;
  protocol: string;
  expected?: string | undefined;
}): string => `${t.caseId}|${t.ip}|${t.port}|${t.protocol}|${t.expected ?? ''}`;

/**
 * Why a result does not answer the batch it names, or undefined when it does: it came on
 * its own node's subject (the one NATS lets only that node's prober publish to), and the
 * batch at its sequence was dispatched to that node with the same id, attempt, source and
 * block, and every observation answers one of the batch's targets, once.
 */
export function resultMismatch(
  result: ProbeResult,
  subject: string,
  stored: StoredBatch | undefined,
): string | undefined {
  const subjectNode = nodeOfResultSubject(subject);
  if (subjectNode !== result.node)
    return `result for node ${result.node} arrived on ${subject}, not on that node's subject`;
  if (stored === undefined)
    return `no dispatched batch at sequence ${result.batchSequence} (never sent, or no longer held)`;
  if (stored === 'invalid') return `sequence ${result.batchSequence} does not hold a probe batch`;
  return batchMismatch(result, stored) ?? observationMismatch(result, stored.batch);
}

/** Why the dispatched batch is not the one the result says it answers. */
function batchMismatch(
  result: ProbeResult,
  stored: Exclude<StoredBatch, 'invalid'>,
): string | undefined {
  const { batch } = stored;
  if (stored.subject !== probeBatchSubject(result.node) || batch.node !== result.node)
    return `batch ${batch.batchId} was dispatched to node ${batch.node}, not ${result.node}`;
  if (batch.batchId !== result.batchId || batch.attempt !== result.attempt)
    return `sequence ${result.batchSequence} holds batch ${batch.batchId} attempt ${batch.attempt}, not ${result.batchId} attempt ${result.attempt}`;
  if (
    batch.source.namespace !== result.source.namespace ||
    batch.source.name !== result.source.name
  )
    return `batch ${batch.batchId} probes from ${batch.source.namespace}/${batch.source.name}, not ${result.source.namespace}/${result.source.name}`;
  if ((batch.blockId ?? '') !== (result.blockId ?? ''))
    return `batch ${batch.batchId} belongs to block ${batch.blockId ?? '(none)'}, not ${result.blockId ?? '(none)'}`;
  return undefined;
}

/** Why the result's observations do not answer the batch's targets, each at most once. */
function observationMismatch(result: ProbeResult, batch: ProbeBatch): string | undefined {
  const targets = new Set(batch.targets.map(targetKey));
  const answered = new Set<string>();
  for (const o of result.observations) {
    const key = targetKey(o);
    if (!targets.has(key))
      return `observation of ${o.caseId} (${o.ip}:${o.port}/${o.protocol}) answers no target of batch ${batch.batchId}`;
    if (answered.has(key)) return `case ${o.caseId} is answered twice in one result`;
    answered.add(key);
  }
  return undefined;
}

export interface ResultGateSettings {
  /** Batches remembered as answered, so a second answer is refused (oldest forgotten first). */
  readonly rememberAnswered: number;
}

export const RESULT_GATE_DEFAULTS: ResultGateSettings = { rememberAnswered: 100_000 };

/**
 * The reporter's door for results (ADR 0014): a result is judged only if it answers a
 * batch that was dispatched to its node and not answered already. Anything else is
 * rejected, so the bus dead-letters it with the reason. A redelivery of a result already
 * taken (a lost ack) is let through once more only after this process restarts.
 */
export class ResultGate {
  private readonly answered = new Set<string>();

  constructor(
    private readonly batches: DispatchedBatches,
    private readonly settings: ResultGateSettings = RESULT_GATE_DEFAULTS,
  ) {}

  /**
   * Undefined to judge the result (the batch is then claimed: release() it if judging
   * fails); `duplicate` to ack it unjudged; or a rejection.
   */
  async admit(
    result: ProbeResult,
    subject: string,
    deliveryCount: number,
  ): Promise<Rejection | 'duplicate' | undefined> {
    const key = `${result.batchId}/${result.attempt}`;
    // The same message again (its ack was lost) is already judged and counted once;
    // another message answering the same batch is refused.
    const again = (): Rejection | 'duplicate' =>
      deliveryCount > 1
        ? 'duplicate'
        : reject(`batch ${result.batchId} attempt ${result.attempt} was answered already`);
    if (this.answered.has(key)) return again();
    const why = resultMismatch(result, subject, await this.batches.batchAt(result.batchSequence));
    if (why) return reject(why);
    // Claimed before judging: results are handled several at once, and a second answer
    // arriving meanwhile must not be judged too.
    if (this.answered.has(key)) return again();
    this.answered.add(key);
    if (this.answered.size > this.settings.rememberAnswered) {
      const oldest = this.answered.values().next().value;
      if (oldest !== undefined) this.answered.delete(oldest);
    }
    return undefined;
  }

  /** Judging a claimed result failed: it will be delivered again, and must then be let in. */
  release(result: ProbeResult): void {
    this.answered.delete(`${result.batchId}/${result.attempt}`);
  }
}
