import {
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  proberDurable,
  reject,
  type ProbeBatch,
  type Reachability,
  type Rejection,
} from '#lumen/contracts';
import { executeBatch } from './execute.js';
import type { ProberPorts } from './ports.js';
import type { ProberSettings } from './settings.js';

export interface ProberWorkerOptions {
  readonly settings: ProberSettings;
  /** This process: a new one after every restart, so the scheduler notices a replaced prober. */
  readonly instance: string;
  readonly version: string;
  readonly heartbeatIntervalMs: number;
  /** Batches probed at once (PROBER_DEFAULTS.concurrency). */
  readonly concurrency: number;
}

/**
 * A node's prober: takes the node's batches, runs them from inside the source pods'
 * network namespaces, publishes the observations, and keeps its heartbeat fresh.
 */
export class ProberWorker {
  private consumer: { stop: () => Promise<void> } | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(
    private readonly ports: ProberPorts,
    private readonly options: ProberWorkerOptions,
  ) {}

  get consuming(): boolean {
    return this.consumer !== undefined;
  }

  async start(): Promise<void> {
    const node = this.options.settings.node;
    // The heartbeat comes first: the scheduler makes a node's consumer when its prober is
    // first seen alive, and the prober, which may not manage consumers, then binds to it.
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatIntervalMs);
    this.consumer = await this.ports.bus.consume({
      contract: ProbeBatchContract,
      durable: proberDurable(node),
      filterSubject: probeBatchSubject(node),
      bind: true,
      concurrency: this.options.concurrency,
      handle: (batch, delivery) => this.probe(batch, delivery.traceparent, delivery.streamSequence),
    });
  }

  private async beat(): Promise<void> {
    try {
      await this.ports.heartbeats.announce({
        node: this.options.settings.node,
        instance: this.options.instance,
        version: this.options.version,
        at: this.ports.host.now().toISOString(),
        inFlight: this.inFlight,
      });
    } catch (error) {
      this.ports.log.warn('heartbeat failed', { error: String(error) });
    }
  }

  /**
   * Acked once the result is in JetStream; a redelivered batch yields the same result id.
   * `batchSequence` is the batch's place in its stream, which the reporter checks the
   * result against.
   */
  async probe(
    batch: ProbeBatch,
    traceparent: string | undefined,
    batchSequence: number,
  ): Promise<Rejection | undefined> {
    if (batch.node !== this.options.settings.node)
      return reject(
        `batch ${batch.batchId} is for node ${batch.node}, not this prober's ${this.options.settings.node}`,
      );
    this.inFlight += 1;
    this.ports.log.info('batch received', {
      batchId: batch.batchId,
      attempt: batch.attempt,
      targets: batch.targets.length,
    });
    // A block's rotation cells are counted, not traced one by one (ADR 0013).
    const spans = new Map(
      (batch.blockId ? [] : batch.targets).map((t) => [
        t.caseId,
        this.ports.tracer.startCaseSpan('probe case', batch.traces?.[t.caseId] ?? traceparent, {
          'lumen.case_id': t.caseId,
          'lumen.batch_id': batch.batchId,
          'lumen.node': batch.node,
        }),
      ]),
    );
    const seen = new Map<string, string>();
    try {
      const scope = this.ports.targetScope?.();
      const settings = scope ? { ...this.options.settings, ...scope } : this.options.settings;
      const result = await executeBatch(batch, settings, this.ports.host, this.ports.sources);
      const traces = Object.fromEntries(
        [...spans].flatMap(([id, span]) => (span.traceparent ? [[id, span.traceparent]] : [])),
      );
      await this.ports.bus.publish(
        probeResultSubject(batch.node),
        ProbeResultContract,
        { ...result, batchSequence, ...(Object.keys(traces).length > 0 ? { traces } : {}) },
        { msgId: `${batch.batchId}/${batch.attempt}`, ...(traceparent ? { traceparent } : {}) },
      );
      const reachabilities: Reachability[] = [];
      for (const o of result.observations) {
        seen.set(o.caseId, o.reachability);
        reachabilities.push(o.reachability);
      }
      this.ports.metrics.batchProbed(batch.node, reachabilities, result.durationMs);
      this.ports.log.info('batch probed', {
        batchId: batch.batchId,
        durationMs: result.durationMs,
      });
      return undefined;
    } finally {
      for (const [id, span] of spans) {
        const reachability = seen.get(id);
        span.end(reachability ? { 'lumen.reachability': reachability } : {});
      }
      this.inFlight -= 1;
    }
  }

  /** Stops taking work (a batch in progress finishes first) and withdraws the heartbeat. */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.consumer?.stop();
    this.consumer = undefined;
    await this.ports.heartbeats.withdraw(this.options.settings.node).catch(() => undefined);
  }
}
