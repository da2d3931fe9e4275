import { afterAll, describe, expect, it } from '@jest/globals';
import { traceIdOf } from '#lumen/contracts';
import { startCaseSpan, startTelemetry } from '#lumen/telemetry';

const telemetry = startTelemetry({ service: 'test', exporter: 'memory' });
afterAll(async () => telemetry.shutdown());

describe('case traces', () => {
  it('continues one trace across hops through traceparents, each hop a child of the last', () => {
    const planned = startCaseSpan('planner', 'plan case', undefined, { 'lumen.case_id': 'a' });
    const scheduled = startCaseSpan('scheduler', 'schedule case', planned.traceparent);
    const probed = startCaseSpan('prober', 'probe case', scheduled.traceparent);
    for (const span of [probed, scheduled, planned]) span.end();
    expect(planned.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(new Set([planned.traceId, scheduled.traceId, probed.traceId]).size).toBe(1);
    expect(traceIdOf(probed.traceparent)).toBe(planned.traceId);
    const spans = telemetry.finishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    expect(byName.get('probe case')?.parentSpanContext?.spanId).toBe(
      byName.get('schedule case')?.spanContext().spanId,
    );
    expect(byName.get('plan case')?.attributes['lumen.service']).toBe('planner');
  });

  it('starts a new trace when the message carried none', () => {
    const a = startCaseSpan('planner', 'plan case', undefined);
    const b = startCaseSpan('planner', 'plan case', undefined);
    a.end();
    b.end();
    expect(a.traceId).not.toBe(b.traceId);
  });
});
