/**
 * What every stage's core needs from the process it runs in, as ports: the time, a
 * structured log and the spans of a case's trace. The services pass the real ones
 * (libs/telemetry for spans); unit tests pass fakes.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Structured log lines: a message and ids, never payloads. */
export interface Log {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const silentLog: Log = { info: () => undefined, warn: () => undefined };

/** One step of a case's trace, in one service. */
export interface CaseSpan {
  /** For the next hop: the NATS header or a batch's per-case map. */
  readonly traceparent: string | undefined;
  readonly traceId: string | undefined;
  readonly end: (attributes?: SpanAttributes, error?: string) => void;
}

export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** Starts a span of a case's trace under the traceparent that came with its message. */
export interface CaseTracer {
  startCaseSpan(name: string, parent: string | undefined, attributes?: SpanAttributes): CaseSpan;
}

/** The trace id inside a W3C traceparent. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent?.split('-')[1];
}

/** No spans: each hop passes the traceparent it was given on unchanged. */
export const noTracing: CaseTracer = {
  startCaseSpan: (_name, parent) => ({
    traceparent: parent,
    traceId: traceIdOf(parent),
    end: () => undefined,
  }),
};
