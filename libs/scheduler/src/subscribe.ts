import {
  CellBlockContract,
  nodeOfResultSubject,
  reject,
  ProbeResultContract,
  ReprobeRequestContract,
  TestCaseContract,
  consumeAll,
  serviceConsumer,
  type Consumer,
  type ConsumerNaming,
  type Stop,
} from '#lumen/contracts';
import type { SchedulerCore } from './core.js';

/** The scheduler's inputs: cases, cell blocks, re-probe requests, and results (to clear what is in flight). */
export function subscribeScheduler(
  bus: Consumer,
  scheduler: SchedulerCore,
  naming: ConsumerNaming,
): Promise<Stop[]> {
  return consumeAll(bus, naming, (consume) => [
    consume({
      ...serviceConsumer('scheduler-cases'),
      contract: TestCaseContract,
      handle: (value, delivery) => scheduler.onCase(value, delivery.traceparent),
    }),
    consume({
      ...serviceConsumer('scheduler-cell-blocks'),
      contract: CellBlockContract,
      handle: (value) => scheduler.onBlock(value),
    }),
    consume({
      ...serviceConsumer('scheduler-reprobes'),
      contract: ReprobeRequestContract,
      handle: (value, delivery) => scheduler.onReprobe(value, delivery.traceparent),
    }),
    consume({
      ...serviceConsumer('scheduler-results'),
      contract: ProbeResultContract,
      handle: (value, delivery) => {
        // Only a node's own prober may publish on its subject: a result naming another
        // node frees nothing (the reporter dead-letters it, with the full check).
        if (nodeOfResultSubject(delivery.subject) !== value.node)
          return Promise.resolve(
            reject(`result for node ${value.node} arrived on ${delivery.subject}`),
          );
        scheduler.onResult(value);
        return Promise.resolve();
      },
    }),
  ]);
}
