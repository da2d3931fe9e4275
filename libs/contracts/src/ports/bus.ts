import type { Contract } from '../common.js';
import { DURABLE_MAX_DELIVER } from '../consumers.js';

/**
 * The message bus as every stage sees it: publish a contract's message, consume one
 * subject. `MessageBus` (libs/messaging, JetStream) is the real one; stage tests use
 * in-memory fakes.
 */
export interface PublishOptions {
  /** Deduplication id (Nats-Msg-Id): the same id within two minutes is stored once. */
  readonly msgId?: string;
  readonly traceparent?: string;
}

export interface Delivery {
  readonly subject: string;
  readonly traceparent: string | undefined;
  /** 1 on first delivery; more after a redelivery. */
  readonly deliveryCount: number;
  /** The message's sequence in its stream: where it can be read back. */
  readonly streamSequence: number;
}

/** Returned by a handler: not yet, deliver this message again after a while (no failure). */
export interface Deferral {
  readonly deferMs: number;
}

export function defer(ms: number): Deferral {
  return { deferMs: Math.max(0, Math.round(ms)) };
}

/** Returned by a handler: a well-formed message that must not be used; dead-letter it, with why. */
export interface Rejection {
  readonly rejectReason: string;
}

export function reject(reason: string): Rejection {
  return { rejectReason: reason };
}

/** What a handler may resolve to: nothing (done, ack), a deferral or a rejection. */
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- most handlers return nothing
export type HandlerOutcome = void | Deferral | Rejection;

export interface ConsumeOptions<T> {
  readonly contract: Contract<T>;
  /** Durable consumer name: one per service and purpose; restarts resume where it left. */
  readonly durable: string;
  readonly filterSubject: string;
  /**
   * Called once per valid message. The message is acked only when this resolves, so
   * resolve only after the effect is durable. A throw means "try again later".
   */
  readonly handle: (value: T, delivery: Delivery) => Promise<HandlerOutcome>;
  /** Deliveries before a failing message goes to the dead letter subject. */
  readonly maxDeliver?: number;
  /** How long a message may stay unacked before it is delivered again. */
  readonly ackWaitMs?: number;
  readonly retryDelayMs?: number;
  /** Messages handled at once (default 1: in order). */
  readonly concurrency?: number;
  /** Only messages published from now on (a one-shot run); default: everything retained. */
  readonly onlyNew?: boolean;
  /** The server deletes the consumer after this long without a client (one-shot runs). */
  readonly inactiveThresholdMs?: number;
  /**
   * Use the durable consumer someone else made (a prober may not manage consumers; the
   * scheduler makes each node's), waiting for it to exist; its ack wait is the server's.
   */
  readonly bind?: boolean;
}

export interface Publisher {
  publish<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options?: PublishOptions,
  ): Promise<void>;
}

export interface Consumer {
  consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }>;
}

export type Stop = () => Promise<void>;

/** How a deployment names and scopes its consumers: durable services, or a one-shot run. */
export interface ConsumerNaming {
  /** Prefix of durable names ("" for the services). */
  readonly prefix: string;
  /** A one-shot run reads only what is published after it starts, and is forgotten after it ends. */
  readonly oneShot: boolean;
  /**
   * The consumers exist already (the scheduler makes every service's, SERVICE_CONSUMERS):
   * bind to them, waiting until they do, instead of making them.
   */
  readonly bind?: boolean;
}

/** One of a stage's consumers, named without the deployment's prefix. */
export type StageConsumer<T> = Omit<
  ConsumeOptions<T>,
  'durable' | 'onlyNew' | 'inactiveThresholdMs' | 'maxDeliver'
> & { readonly name: string };

/**
 * Starts a stage's consumers under a deployment's naming: durable names get its prefix,
 * and a one-shot run's consumers read only new messages and vanish a minute after it.
 */
export async function consumeAll(
  bus: Consumer,
  naming: ConsumerNaming,
  consumers: (
    consume: <T>(consumer: StageConsumer<T>) => Promise<{ stop: Stop }>,
  ) => Promise<{ stop: Stop }>[],
): Promise<Stop[]> {
  const defaults = naming.oneShot
    ? { onlyNew: true, inactiveThresholdMs: 60_000, maxDeliver: DURABLE_MAX_DELIVER }
    : { maxDeliver: DURABLE_MAX_DELIVER, ...(naming.bind ? { bind: true } : {}) };
  const started = await Promise.all(
    consumers(({ name, ...options }) =>
      bus.consume({ ...options, ...defaults, durable: `${naming.prefix}${name}` }),
    ),
  );
  return started.map((c) => c.stop);
}

/**
 * A publish a full work stream refused (ADR 0019): nothing was stored, and the publisher
 * keeps the work to send again. Raised by the bus; a stage may act on it by its type.
 */
export class StreamFullError extends Error {
  constructor(
    readonly stream: string,
    readonly subject: string,
    readonly reason: string,
  ) {
    super(
      `stream ${stream} is full (${reason}): the message on ${subject} was refused and is kept to be sent again; its consumers are behind or stopped (lumen_stream_bytes, docs/operations.md)`,
    );
    this.name = 'StreamFullError';
  }
}
