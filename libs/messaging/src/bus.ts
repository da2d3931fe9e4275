import {
  AckPolicy,
  DeliverPolicy,
  connect,
  headers as natsHeaders,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type KV,
  type NatsConnection,
} from 'nats';
import {
  DEAD_LETTER_SUBJECT,
  DeadLetterContract,
  decode,
  encode,
  type ConsumeOptions,
  type Consumer,
  type Contract,
  type PublishOptions,
  type Publisher,
} from '#lumen/contracts';
import { deadLetters } from '#lumen/telemetry';
import { ensureStreams, streamForSubject } from './streams.js';

/** W3C trace context travels in this NATS header. */
export const TRACEPARENT_HEADER = 'traceparent';

export interface BusCounters {
  readonly deadLettered: number;
  readonly handled: number;
  readonly failed: number;
}

export interface Logger {
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
}

const MAX_DEAD_PAYLOAD = 64 * 1024;
/** How long the server waits for an ack before it delivers a message again. */
const DEFAULT_ACK_WAIT_MS = 30_000;

/**
 * Lumen's JetStream transport: validated publishing, durable pull consumers, ack after
 * effect, dead letters with reasons. Nest's NATS transport speaks core NATS only; see
 * docs/adr/0006-jetstream-transport.md.
 */
export class MessageBus implements Publisher, Consumer {
  private readonly consumers = new Set<ConsumerMessages>();
  private counts = { deadLettered: 0, handled: 0, failed: 0 };

  private constructor(
    readonly connection: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly service: string,
    private readonly log: Logger,
  ) {}

  static async connect(options: {
    url: string;
    service: string;
    log?: Logger;
    user?: string;
    pass?: string;
  }): Promise<MessageBus> {
    const connection = await connect({
      servers: options.url,
      name: `lumen-${options.service}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...(options.user ? { user: options.user, pass: options.pass ?? '' } : {}),
    });
    const jsm = await connection.jetstreamManager();
    await ensureStreams(jsm);
    return new MessageBus(
      connection,
      connection.jetstream(),
      jsm,
      options.service,
      options.log ?? { warn: () => undefined },
    );
  }

  get counters(): BusCounters {
    return { ...this.counts };
  }

  async publish<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options: PublishOptions = {},
  ): Promise<void> {
    const headers = natsHeaders();
    if (options.traceparent) headers.set(TRACEPARENT_HEADER, options.traceparent);
    await this.js.publish(subject, encode(contract, value), {
      headers,
      ...(options.msgId ? { msgID: options.msgId } : {}),
    });
  }

  /** Starts consuming in the background; stop() ends it. */
  async consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }> {
    const stream = streamForSubject(options.filterSubject);
    const limit = Math.max(1, options.concurrency ?? 1);
    const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    const config = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: options.onlyNew ? DeliverPolicy.New : DeliverPolicy.All,
      ...(options.inactiveThresholdMs
        ? { inactive_threshold: options.inactiveThresholdMs * 1e6 }
        : {}),
      filter_subject: options.filterSubject,
      ack_wait: ackWaitMs * 1e6,
      max_deliver: -1,
      // The server stops delivering at this many unacked messages (its default is 1,000):
      // a consumer that holds more at once, as the scheduler does while gathering, says so.
      max_ack_pending: Math.max(1000, limit),
    };
    const existing = await this.jsm.consumers.info(stream, options.durable).catch(() => undefined);
    if (existing) await this.jsm.consumers.update(stream, options.durable, config);
    else await this.jsm.consumers.add(stream, config);
    const consumer = await this.js.consumers.get(stream, options.durable);
    // Pulled messages wait in the client until a handler is free, and their ack_wait runs
    // meanwhile: an in-order consumer pulls a few, so a slow handler does not let a long
    // buffer time out and come back as redeliveries.
    const messages = await consumer.consume({
      max_messages: Math.min(256, Math.max(8, limit * 2)),
    });
    this.consumers.add(messages);
    const loop = (async (): Promise<void> => {
      const running = new Set<Promise<void>>();
      for await (const message of messages) {
        const delivery = this.deliver(message, options, ackWaitMs)
          .catch((error: unknown) => {
            // Not acked: JetStream delivers it again after ack_wait.
            this.log.warn('message left unacked', {
              subject: message.subject,
              error: String(error),
            });
          })
          .finally(() => running.delete(delivery));
        running.add(delivery);
        if (running.size >= limit) await Promise.race(running);
      }
      await Promise.all(running);
    })();
    return {
      stop: async () => {
        await messages.close();
        this.consumers.delete(messages);
        await loop;
      },
    };
  }

  private async deliver<T>(
    message: JsMsg,
    options: ConsumeOptions<T>,
    ackWaitMs: number,
  ): Promise<void> {
    const decoded = decode(options.contract, message.data);
    const deliveryCount = message.info.deliveryCount;
    if (!decoded.ok) {
      await this.deadLetter(message, decoded.reason, deliveryCount);
      return;
    }
    // A handler may hold its message longer than ack_wait (the scheduler holds cases until
    // a prober has room): tell the server it is still being worked on, so it is not
    // delivered a second time meanwhile. A crashed process stops saying so, and the
    // message is delivered again one ack_wait later.
    const working = setInterval(
      () => {
        message.working();
      },
      Math.max(100, ackWaitMs / 3),
    );
    try {
      const outcome = await options.handle(decoded.value, {
        subject: message.subject,
        traceparent: message.headers?.get(TRACEPARENT_HEADER) || undefined,
        deliveryCount,
      });
      if (outcome) {
        message.nak(outcome.deferMs);
        return;
      }
      await message.ackAck();
      this.counts.handled += 1;
    } catch (error) {
      this.counts.failed += 1;
      const reason = error instanceof Error ? error.message : String(error);
      if (deliveryCount >= (options.maxDeliver ?? 5)) {
        await this.deadLetter(
          message,
          `gave up after ${deliveryCount} deliveries: ${reason}`,
          deliveryCount,
        );
      } else {
        this.log.warn('message handling failed; it will be delivered again', {
          subject: message.subject,
          deliveryCount,
          error: reason,
        });
        message.nak(Math.min(30_000, (options.retryDelayMs ?? 500) * 2 ** (deliveryCount - 1)));
      }
    } finally {
      clearInterval(working);
    }
  }

  /** Records the message and why on lumen.v1.dead, then takes it out of its stream's flow. */
  private async deadLetter(message: JsMsg, reason: string, deliveries: number): Promise<void> {
    const payload = Buffer.from(message.data.subarray(0, MAX_DEAD_PAYLOAD)).toString('base64');
    await this.publish(DEAD_LETTER_SUBJECT, DeadLetterContract, {
      subject: message.subject,
      service: this.service,
      reason: reason.slice(0, 2000),
      receivedAt: new Date().toISOString(),
      deliveries,
      payload,
      truncated: message.data.length > MAX_DEAD_PAYLOAD,
    });
    message.term(reason.slice(0, 200));
    this.counts.deadLettered += 1;
    deadLetters.inc({ subject: message.subject });
    this.log.warn('message dead-lettered', { subject: message.subject, reason });
  }

  /** A key-value bucket (created when missing) whose entries expire after ttlMs. */
  async keyValue(bucket: string, ttlMs: number): Promise<KV> {
    return this.js.views.kv(bucket, { ttl: ttlMs, history: 1 });
  }

  async close(): Promise<void> {
    for (const messages of this.consumers) await messages.close();
    await this.connection.drain();
  }
}
