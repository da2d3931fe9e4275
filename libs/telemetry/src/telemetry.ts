import {
  ROOT_CONTEXT,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { traceIdOf, type CaseSpan, type CaseTracer } from '#lumen/contracts';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export type TraceExporterKind = 'otlp' | 'memory' | 'none';

export interface TelemetryOptions {
  readonly service: string;
  /** otlp: to OTEL_EXPORTER_OTLP_ENDPOINT; memory: kept for tests; none: ids only. */
  readonly exporter: TraceExporterKind;
  /** Base URL of an OTLP/HTTP collector, e.g. http://otel-collector:4318. */
  readonly otlpEndpoint?: string;
}

export interface Telemetry {
  /** Finished spans, when the exporter is `memory`. */
  readonly finishedSpans: () => readonly ReadableSpan[];
  readonly shutdown: () => Promise<void>;
}

let started: (Telemetry & { provider: BasicTracerProvider }) | undefined;
const w3c = new W3CTraceContextPropagator();

/**
 * Starts tracing for the process. Call it first in main.ts, before Nest and any client
 * library loads. Trace ids exist even with the `none` exporter, so stored attempts and
 * logs can always name their trace. A second call returns the first telemetry.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (started) return started;
  const memory = options.exporter === 'memory' ? new InMemorySpanExporter() : undefined;
  const processors: SpanProcessor[] = [];
  if (memory) processors.push(new SimpleSpanProcessor(memory));
  if (options.exporter === 'otlp')
    processors.push(
      new BatchSpanProcessor(
        new OTLPTraceExporter(
          options.otlpEndpoint
            ? { url: `${options.otlpEndpoint.replace(/\/$/, '')}/v1/traces` }
            : {},
        ),
      ),
    );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': `lumen-${options.service}` }),
    spanProcessors: processors,
  });
  trace.setGlobalTracerProvider(provider);
  started = {
    provider,
    finishedSpans: () => memory?.getFinishedSpans() ?? [],
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      started = undefined;
    },
  };
  return started;
}

/**
 * Starts a span of a case's trace under the traceparent that came with the message (or a
 * new trace without one). Context is passed explicitly, hop to hop, because messages
 * cross processes and batches carry many traces at once.
 */
export function startCaseSpan(
  service: string,
  name: string,
  parent: string | undefined,
  attributes: Attributes = {},
): CaseSpan {
  const parentContext = parent
    ? w3c.extract(ROOT_CONTEXT, { traceparent: parent }, defaultTextMapGetter)
    : ROOT_CONTEXT;
  const span: Span = trace
    .getTracer(`lumen-${service}`)
    .startSpan(name, { attributes: { 'lumen.service': service, ...attributes } }, parentContext);
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  const traceparent = carrier.traceparent ?? parent;
  return {
    traceparent,
    traceId: traceIdOf(traceparent),
    end: (more, error) => {
      if (more) span.setAttributes(more);
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end();
    },
  };
}

/** The CaseTracer port of a stage's core, backed by OpenTelemetry, for one service. */
export function caseTracer(service: string): CaseTracer {
  return {
    startCaseSpan: (name, parent, attributes) => startCaseSpan(service, name, parent, attributes),
  };
}
