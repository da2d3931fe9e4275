/**
 * The scheduler makes every service's durable consumers from SERVICE_CONSUMERS, and the
 * planner and reporter only bind (ADR 0014, stream and consumer management in one place):
 * the catalogue must hold exactly the consumers the stages read, with the same settings.
 */
import { describe, expect, it } from '@jest/globals';
import {
  DURABLE_MAX_DELIVER,
  SERVICE_CONSUMERS,
  durableServiceConsumers,
  type ConsumeOptions,
  type Consumer,
} from '#lumen/contracts';
import { subscribePlanner, type PlannerCore } from '#lumen/planner';
import { subscribeReporter, type ReporterCore, type ResultGate } from '#lumen/reporter';
import { subscribeScheduler, type SchedulerCore } from '#lumen/scheduler';

/** Records what each stage asks to consume, and consumes nothing. */
class RecordingConsumer implements Consumer {
  readonly asked: Omit<ConsumeOptions<unknown>, 'handle' | 'contract'>[] = [];
  consume<T>(options: ConsumeOptions<T>): Promise<{ stop: () => Promise<void> }> {
    this.asked.push({
      durable: options.durable,
      filterSubject: options.filterSubject,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(options.maxDeliver === undefined ? {} : { maxDeliver: options.maxDeliver }),
      ...(options.bind === undefined ? {} : { bind: options.bind }),
    });
    return Promise.resolve({ stop: () => Promise.resolve() });
  }
}

describe('SERVICE_CONSUMERS', () => {
  it('is exactly what the planner, scheduler and reporter consume, bound when they bind', async () => {
    const bus = new RecordingConsumer();
    const naming = { prefix: '', oneShot: false, bind: true };
    await subscribePlanner(bus, {} as PlannerCore, naming);
    await subscribeScheduler(bus, {} as SchedulerCore, { prefix: '', oneShot: false });
    await subscribeReporter(bus, {} as ReporterCore, naming, {} as ResultGate);
    expect(bus.asked.map((c) => c.durable).sort()).toEqual(Object.keys(SERVICE_CONSUMERS).sort());
    const made = new Map(durableServiceConsumers({ prefix: '' }).map((c) => [c.durable, c]));
    for (const asked of bus.asked) {
      expect(made.get(asked.durable)).toEqual({
        durable: asked.durable,
        filterSubject: asked.filterSubject,
        concurrency: Math.max(1, asked.concurrency ?? 1),
        maxDeliver: DURABLE_MAX_DELIVER,
      });
      expect(asked.maxDeliver).toBe(DURABLE_MAX_DELIVER);
      // The scheduler makes its own as it consumes; the others only bind.
      expect(asked.bind ?? false).toBe(!asked.durable.startsWith('scheduler-'));
    }
  });
});
