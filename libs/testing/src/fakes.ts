import type {
  CaseSpan,
  CaseTracer,
  Clock,
  ConsumeOptions,
  Consumer,
  Contract,
  HandlerOutcome,
  Log,
  PublishOptions,
  Publisher,
} from '#lumen/contracts';
import { StreamFullError } from '#lumen/contracts';
import { ProberAttestor, type BoundPod, type ReviewedToken } from '#lumen/access';
import type { Cluster } from '#lumen/policy';

/** A NATS subject filter (`*` one token, `>` the rest) against a subject. */
function subjectMatches(filter: string, subject: string): boolean {
  const want = filter.split('.');
  const got = subject.split('.');
  for (let i = 0; i < want.length; i += 1) {
    if (want[i] === '>') return got.length > i;
    if (want[i] !== '*' && want[i] !== got[i]) return false;
  }
  return want.length === got.length;
}

/*
 * In-memory fakes of the ports every stage shares, for the cores' unit tests. The real
 * ones (JetStream, OpenTelemetry) are proven by the integration and lab suites.
 */

export interface PublishedMessage {
  readonly subject: string;
  readonly contract: string;
  readonly value: unknown;
  readonly options: PublishOptions;
}

/**
 * A bus that records what is published (each message checked against its contract, as the
 * real bus does before sending) and hands deliveries to whoever consumes a subject.
 */
export class InMemoryBus implements Publisher, Consumer {
  readonly messages: PublishedMessage[] = [];
  readonly consumers: ConsumeOptions<unknown>[] = [];
  private delivered = 0;
  /** Subjects whose stream is full, with that stream's name: a publish there is refused. */
  private readonly full = new Map<string, string>();

  /** The stream taking `subject` is full (ADR 0019) until accept(subject). */
  refuse(subject: string, stream: string): void {
    this.full.set(subject, stream);
  }

  accept(subject: string): void {
    this.full.delete(subject);
  }

  publish<T>(
    subject: string,
    contract: Contract<T>,
    value: T,
    options: PublishOptions = {},
  ): Promise<void> {
    const parsed = contract.schema.safeParse(value);
    if (!parsed.success)
      return Promise.reject(
        new Error(`published an invalid ${contract.name}: ${parsed.error.message}`),
      );
    const fullStream = this.full.get(subject);
    if (fullStream)
      return Promise.reject(new StreamFullError(fullStream, subject, 'maximum bytes exceeded'));
    this.messages.push({ subject, contract: contract.name, value, options });
    return Promise.resolve();
  }

  consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }> {
    const entry = options as unknown as ConsumeOptions<unknown>;
    this.consumers.push(entry);
    return Promise.resolve({
      stop: () => {
        this.consumers.splice(this.consumers.indexOf(entry), 1);
        return Promise.resolve();
      },
    });
  }

  /** Delivers a message to the consumer of `subject`, as JetStream would (first delivery). */
  async deliver(subject: string, value: unknown, traceparent?: string): Promise<HandlerOutcome> {
    const consumer = this.consumers.find((c) => subjectMatches(c.filterSubject, subject));
    if (!consumer) throw new Error(`nobody consumes ${subject}`);
    this.delivered += 1;
    return consumer.handle(value, {
      subject,
      traceparent,
      deliveryCount: 1,
      streamSequence: this.delivered,
    });
  }

  /** The values published on a subject, in order. */
  on<T>(subject: string): T[] {
    return this.messages.filter((m) => m.subject === subject).map((m) => m.value as T);
  }

  clear(): void {
    this.messages.length = 0;
  }
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private current: Date = new Date('2026-11-26T10:00:00Z')) {}
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

/** A log that keeps its lines, so a test can say what was warned about. */
export class RecordingLog implements Log {
  readonly lines: { level: 'info' | 'warn'; message: string; fields: Record<string, unknown> }[] =
    [];
  info(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.message);
  }
}

/** Spans as records: each gets a traceparent of its own under its parent's trace. */
export class RecordingTracer implements CaseTracer {
  readonly spans: { name: string; parent: string | undefined; ended: boolean }[] = [];
  startCaseSpan(name: string, parent: string | undefined): CaseSpan {
    const record = { name, parent, ended: false };
    this.spans.push(record);
    const traceId = parent?.split('-')[1] ?? this.spans.length.toString(16).padStart(32, '0');
    const spanId = this.spans.length.toString(16).padStart(16, '0');
    return {
      traceparent: `00-${traceId}-${spanId}-01`,
      traceId,
      end: () => {
        record.ended = true;
      },
    };
  }
}

/** Every pod of a cluster running on node-1, with a UID and an IP: a planner's pods. */
export function runningOnOneNode(
  cluster: Cluster,
): (Cluster['pods'][number] & { uid: string; node: string; running: true; ip: string })[] {
  return cluster.pods.map((p, i) => ({
    ...p,
    uid: `uid-${i}`,
    node: 'node-1',
    running: true,
    ip: p.ip ?? `10.0.0.${i + 2}`,
  }));
}

/**
 * The API server's side of prober identity, in memory (TokenReview and pods): each token is
 * the `lumen-prober` ServiceAccount's in namespace `lumen`, bound to a running prober pod on
 * its node, or it is one the API server does not authenticate. The real ports, against the
 * lab's API emulator, are KubeProberIdentityPorts (libs/kube).
 */
export function inMemoryProberAttestor(
  tokens: Readonly<
    Record<
      string,
      { readonly pod: string; readonly node: string; readonly serviceAccount?: string }
    >
  >,
): ProberAttestor {
  const reviews = new Map<string, ReviewedToken>();
  const pods = new Map<string, BoundPod>();
  for (const [token, { pod, node, serviceAccount }] of Object.entries(tokens)) {
    reviews.set(token, {
      authenticated: true,
      username: `system:serviceaccount:lumen:${serviceAccount ?? 'lumen-prober'}`,
      podName: pod,
      podUid: `uid-${pod}`,
      nodeName: node,
    });
    pods.set(pod, {
      uid: `uid-${pod}`,
      nodeName: node,
      phase: 'Running',
      labels: { 'app.kubernetes.io/component': 'prober' },
      deleting: false,
    });
  }
  return new ProberAttestor(
    {
      namespace: 'lumen',
      serviceAccount: 'lumen-prober',
      podLabels: { 'app.kubernetes.io/component': 'prober' },
      audience: 'lumen-nats',
      maxLifetimeSeconds: 3600,
    },
    {
      reviewToken: (token) =>
        Promise.resolve(
          reviews.get(token) ?? { authenticated: false, error: 'invalid bearer token' },
        ),
      readPod: (namespace, name) =>
        Promise.resolve(namespace === 'lumen' ? pods.get(name) : undefined),
      tokenExpiry: () => undefined,
      now: () => Date.now(),
    },
  );
}
