import {
  CELL_BLOCK_SUBJECT,
  CellBlockContract,
  PROBE_RESULT_SUBJECTS,
  nodeOfResultSubject,
  reject,
  ProbeResultContract,
  REPROBE_REQUEST_SUBJECT,
  ReprobeRequestContract,
  TEST_CASE_SUBJECT,
  TestCaseContract,
  consumeAll,
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
      name: 'scheduler-cases',
      contract: TestCaseContract,
      filterSubject: TEST_CASE_SUBJECT,
      // Cases wait here, unacked, while probers are busy: the more wait, the fuller the
      // batches (one nmap per source pod) they are cut into.
      concurrency: 2048,
      handle: (value, delivery) => scheduler.onCase(value, delivery.traceparent),
    }),
    consume({
      name: 'scheduler-cell-blocks',
      contract: CellBlockContract,
      filterSubject: CELL_BLOCK_SUBJECT,
      // Up to 64,000 rotation cells wait here for room on their nodes (ADR 0013).
      concurrency: 64,
      handle: (value) => scheduler.onBlock(value),
    }),
    consume({
      name: 'scheduler-reprobes',
      contract: ReprobeRequestContract,
      filterSubject: REPROBE_REQUEST_SUBJECT,
      concurrency: 512,
      handle: (value, delivery) => scheduler.onReprobe(value, delivery.traceparent),
    }),
    consume({
      name: 'scheduler-results',
      contract: ProbeResultContract,
      filterSubject: PROBE_RESULT_SUBJECTS,
      concurrency: 16,
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
