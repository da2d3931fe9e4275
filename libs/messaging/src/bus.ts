import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import {
  AckPolicy,
  DeliverPolicy,
  connect,
  headers as natsHeaders,
  credsAuthenticator,
  tokenAuthenticator,
  type ConnectionOptions,
  type ConsumerMessages,
  type Consumer as JsConsumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type KV,
  type NatsConnection,
} from 'nats';
import {
  DEAD_LETTER_SUBJECT,
  DeadLetterContract,
  StreamFullError,
  decode,
  encode,
  type ConsumeOptions,
  type Consumer,
  type Contract,
  type PublishOptions,
  type Publisher,
} from '#lumen/contracts';
import { deadLetters, publishRejected } from '#lumen/telemetry';
import {
  STREAMS,
  awaitStreams,
  ensureStreams,
  streamForSubject,
  streamFullReason,
} from './streams.js';

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

/**
 * What a URL's scheme asks of the connection. nats.js ignores the scheme and upgrades only
 * when the server offers TLS, so a `tls://` URL must say so itself: with a `tls` option the
 * client refuses a server without TLS, and verifies the certificate against the given CA
 * (or the system's roots when none is given) and the URL's host name. A CA with a `nats://`
 * URL is an error, not a silent plaintext connection.
 */
export function natsTls(url: string, caFile: string | undefined): { tls?: NatsTlsOptions } {
  const scheme = /^([a-z]+):\/\//.exec(url)?.[1];
  if (scheme !== 'nats' && scheme !== 'tls')
    throw new Error(`NATS URL ${JSON.stringify(url)}: must be nats:// or tls://`);
  if (scheme === 'nats') {
    if (caFile)
      throw new Error(
        `a NATS CA file (${caFile}) is set, but the URL ${url} is nats://: use tls:// to require TLS`,
      );
    return {};
  }
  return { tls: { ...(caFile ? { ca: readCa(caFile) } : {}), ...identityOfAddress(url) } };
}

/** What Lumen hands nats.js for TLS: the CA's PEM, and who the server must be. */
export interface NatsTlsOptions {
  readonly ca?: string;
  readonly checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
}

function readCa(caFile: string): string {
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the NATS CA file ${caFile}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`the NATS CA file ${caFile} holds no PEM certificate`);
  return ca;
}

/**
 * For a URL that names the server by IP address, the certificate must name that address.
 * nats.js sets no TLS server name for an IP, and Node then checks the certificate against
 * "localhost": any certificate for localhost the CA signed would pass.
 */
function identityOfAddress(url: string): Pick<NatsTlsOptions, 'checkServerIdentity'> {
  const host = /^tls:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/,]+)/.exec(url)?.[1]?.replace(/^\[|\]$/g, '');
  if (!host || isIP(host) === 0) return {};
  return { checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
}

const MAX_DEAD_PAYLOAD = 64 * 1024;
/**
 * A plain NATS connection (no JetStream) with a user's credentials and the same TLS rules
 * as the bus: for the auth callout service, whose user may do nothing but answer.
 */
export function connectNats(options: {
  url: string;
  name: string;
  user: string;
  pass: string;
  caFile?: string;
}): Promise<NatsConnection> {
  return connect({
    ...lumenConnection(options.url, options.name, options.caFile),
    user: options.user,
    pass: options.pass,
  });
}

/**
 * How every Lumen client connects: to any of the comma-separated servers of `url` (those
 * of a cluster; the server tells the client of the others too), reconnecting for ever,
 * with the bus's TLS rules.
 */
function lumenConnection(url: string, name: string, caFile: string | undefined): ConnectionOptions {
  return {
    servers: url
      .split(',')
      .map((server) => server.trim())
      .filter((server) => server.length > 0),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...natsTls(url, caFile),
  };
}

/**
 * Connects, and while the server refuses the client's identity (or cannot be reached),
 * tries again with a growing pause up to 10 s, logging each refusal with its reason.
 */
async function untilAdmitted(
  open: () => Promise<NatsConnection>,
  log: Logger,
): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await open();
    } catch (error) {
      const pauseMs = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
      log.warn(
        `NATS did not admit this client (attempt ${attempt}): ${error instanceof Error ? error.message : String(error)}; trying again in ${pauseMs} ms`,
      );
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}

/** Reads a credentials file at each call, so that a rotated file is picked up on reconnect. */
function credsReader(file: string): () => Uint8Array {
  return () => new Uint8Array(readFileSync(file));
}

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

  private readonly js: JetStreamClient;

  private constructor(
    readonly connection: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly service: string,
    private readonly log: Logger,
    private readonly streamReplicas: number,
  ) {
    this.js = connection.jetstream();
  }

  static async connect(options: {
    url: string;
    service: string;
    log?: Logger;
    user?: string;
    pass?: string;
    /**
     * Create or update Lumen's streams (default). A prober does not: it may not manage
     * streams, and uses only its node's consumer (ADR 0014).
     */
    manageStreams?: boolean;
    /**
     * Without manageStreams: wait until the streams exist (the scheduler makes them), for
     * a service that publishes to them or reads them from its start.
     */
    awaitStreams?: boolean;
    /** Replies come to subjects under this prefix (a prober's own: NATS lets it read no other). */
    inboxPrefix?: string;
    /**
     * A token read afresh at every (re)connect instead of user and password: a prober's
     * projected ServiceAccount token, which NATS auth callout turns into its node's user
     * (ADR 0016). Kubelet rotates the file, so it is never read once and kept.
     */
    token?: () => string;
    /** A NATS credentials file (user JWT and seed), read afresh at every (re)connect. */
    credsFile?: string;
    /** PEM file of the CA that signed the server's certificate; a `tls://` URL only. */
    caFile?: string;
    /**
     * How many servers keep each stream and key-value bucket this service makes: as many
     * as the JetStream cluster has (up to 5), so that losing one loses nothing. Default 1.
     */
    streamReplicas?: number;
  }): Promise<MessageBus> {
    // A token or credentials file is an identity the server may not accept yet: the auth
    // callout may still be starting, or the kubelet not yet have written the token. Such a
    // client keeps trying (saying why), where a wrong password fails the service at once.
    const identity = options.token !== undefined || options.credsFile !== undefined;
    const open = (): Promise<NatsConnection> =>
      connect({
        ...lumenConnection(options.url, `lumen-${options.service}`, options.caFile),
        ...(identity ? { ignoreAuthErrorAbort: true } : {}),
        ...(options.user ? { user: options.user, pass: options.pass ?? '' } : {}),
        ...(options.token ? { authenticator: tokenAuthenticator(options.token) } : {}),
        ...(options.credsFile
          ? { authenticator: credsAuthenticator(credsReader(options.credsFile)) }
          : {}),
        ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
      });
    const connection = identity
      ? await untilAdmitted(open, options.log ?? { warn: () => undefined })
      : await open();
    const jsm = await connection.jetstreamManager();
    if (options.manageStreams ?? true)
      await ensureStreams(jsm, options.log, connection.info?.version, options.streamReplicas ?? 1);
    else if (options.awaitStreams)
      await awaitStreams(
        jsm,
        () => connection.isClosed(),
        options.log ?? { warn: () => undefined },
      );
    return new MessageBus(
      connection,
      jsm,
      options.service,
      options.log ?? { warn: () => undefined },
      options.streamReplicas ?? 1,
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
    await this.publishSequenced(subject, contract, value, options);
  }

  /** Publishes a validated message; resolves to its sequence in its stream once stored. */
  async publishSequenced<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options: PublishOptions = {},
  ): Promise<number> {
    const headers = natsHeaders();
    if (options.traceparent) headers.set(TRACEPARENT_HEADER, options.traceparent);
    const data = encode(contract, value);
    try {
      const ack = await this.js.publish(subject, data, {
        headers,
        ...(options.msgId ? { msgID: options.msgId } : {}),
      });
      return ack.seq;
    } catch (error) {
      const full = streamFullReason(error);
      if (full === undefined) throw error;
      const stream = streamForSubject(subject);
      publishRejected.inc({ stream });
      throw new StreamFullError(stream, subject, full);
    }
  }

  /** What each of Lumen's streams holds now, and its byte limit. */
  async streamUsage(): Promise<
    { readonly stream: string; bytes: number; messages: number; limitBytes: number }[]
  > {
    return Promise.all(
      STREAMS.map(async ({ name }) => {
        const info = await this.jsm.streams.info(name ?? '');
        return {
          stream: info.config.name,
          bytes: info.state.bytes,
          messages: info.state.messages,
          limitBytes: info.config.max_bytes,
        };
      }),
    );
  }

  /** Creates a durable pull consumer, or brings its configuration up to date. */
  async ensureConsumer(options: {
    durable: string;
    filterSubject: string;
    ackWaitMs?: number;
    concurrency?: number;
    onlyNew?: boolean;
    inactiveThresholdMs?: number;
    /** Deliveries before the server gives up on a message; unbounded unless given. */
    maxDeliver?: number;
  }): Promise<void> {
    const stream = streamForSubject(options.filterSubject);
    const config = {
      durable_name: options.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: options.onlyNew ? DeliverPolicy.New : DeliverPolicy.All,
      ...(options.inactiveThresholdMs
        ? { inactive_threshold: options.inactiveThresholdMs * 1e6 }
        : {}),
      filter_subject: options.filterSubject,
      ack_wait: (options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS) * 1e6,
      // Unbounded unless asked: a deferral is a nak, and a case may wait through many of
      // them for a prober; the bus itself dead-letters a message whose handling keeps failing.
      max_deliver: options.maxDeliver ?? -1,
      // The server stops delivering at this many unacked messages (its default is 1,000):
      // a consumer that holds more at once, as the scheduler does while gathering, says so.
      max_ack_pending: Math.max(1000, options.concurrency ?? 1),
    };
    const existing = await this.jsm.consumers.info(stream, options.durable).catch(() => undefined);
    if (existing) await this.jsm.consumers.update(stream, options.durable, config);
    else await this.jsm.consumers.add(stream, config);
  }

  /**
   * Makes (or updates) durable consumers others will bind to: the scheduler makes every
   * service's (durableServiceConsumers), so no other service needs to manage consumers.
   */
  async ensureDurableConsumers(
    consumers: readonly {
      readonly durable: string;
      readonly filterSubject: string;
      readonly concurrency: number;
      readonly maxDeliver: number;
    }[],
  ): Promise<void> {
    for (const consumer of consumers) await this.ensureConsumer(consumer);
  }

  /** Starts consuming in the background; stop() ends it. */
  async consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }> {
    const stream = streamForSubject(options.filterSubject);
    const limit = Math.max(1, options.concurrency ?? 1);
    let ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    if (!options.bind) await this.ensureConsumer({ ...options, concurrency: limit });
    const consumer = options.bind
      ? await this.boundConsumer(stream, options.durable)
      : await this.js.consumers.get(stream, options.durable);
    if (options.bind) {
      const info = await consumer.info(true);
      ackWaitMs = info.config.ack_wait ? info.config.ack_wait / 1e6 : DEFAULT_ACK_WAIT_MS;
    }
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

  /** A consumer made by someone else, once it exists (asked again every 250 ms until then). */
  private async boundConsumer(stream: string, durable: string): Promise<JsConsumer> {
    for (let waited = 0; ; waited += 1) {
      try {
        return await this.js.consumers.get(stream, durable);
      } catch (error) {
        // The scheduler makes it within a second or two of the first heartbeat: only a
        // longer wait (no scheduler?) is worth a line, every 30 s.
        if (waited > 0 && waited % 120 === 0)
          this.log.warn('still waiting for the scheduler to make this consumer', {
            stream,
            durable,
            waitedSeconds: waited / 4,
            reason: error instanceof Error ? error.message : String(error),
          });
        if (this.connection.isClosed()) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** A message still held by a stream, by its sequence; undefined once it is gone. */
  async storedMessage(
    stream: string,
    sequence: number,
  ): Promise<{ subject: string; data: Uint8Array } | undefined> {
    try {
      const stored = await this.jsm.streams.getMessage(stream, { seq: sequence });
      return { subject: stored.subject, data: stored.data };
    } catch (error) {
      if (/no message found|not found/i.test(String(error))) return undefined;
      throw error;
    }
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
        streamSequence: message.seq,
      });
      if (outcome && 'rejectReason' in outcome) {
        await this.deadLetter(message, outcome.rejectReason, deliveryCount);
        return;
      }
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

  /**
   * A key-value bucket whose entries expire after ttlMs: created when missing, or, with
   * bindOnly (a prober, which may not create it), waited for until the scheduler has.
   */
  async keyValue(bucket: string, ttlMs: number, bindOnly = false): Promise<KV> {
    for (let waited = 0; ; waited += 1) {
      try {
        return await this.js.views.kv(bucket, {
          ttl: ttlMs,
          history: 1,
          bindOnly,
          replicas: this.streamReplicas,
        });
      } catch (error) {
        if (!bindOnly || this.connection.isClosed()) throw error;
        if (waited > 0 && waited % 30 === 0)
          this.log.warn('still waiting for the scheduler to make a key-value bucket', {
            bucket,
            waitedSeconds: waited,
            reason: error instanceof Error ? error.message : String(error),
          });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  async close(): Promise<void> {
    for (const messages of this.consumers) await messages.close();
    await this.connection.drain();
  }
}
