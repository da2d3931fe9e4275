import { ProbeBatchContract, decode, probeBatchSubject, type ProbeBatch } from '#lumen/contracts';
import type { MessageBus } from './bus.js';
import { streamForSubject } from './streams.js';

/**
 * Dispatched probe batches read back from their stream by sequence, for the reporter's
 * result gate (ADR 0014): the stream, not a prober, says what was sent to which node.
 */
export class StreamedBatches {
  private readonly stream = streamForSubject(probeBatchSubject('any-node'));

  constructor(private readonly bus: Pick<MessageBus, 'storedMessage'>) {}

  async batchAt(
    sequence: number,
  ): Promise<{ subject: string; batch: ProbeBatch } | 'invalid' | undefined> {
    const stored = await this.bus.storedMessage(this.stream, sequence);
    if (!stored) return undefined;
    const decoded = decode(ProbeBatchContract, stored.data);
    return decoded.ok ? { subject: stored.subject, batch: decoded.value } : ('invalid' as const);
  }
}
