import {
  CASE_UNSCHEDULABLE_SUBJECT,
  CaseUnschedulableContract,
  POLICY_INVENTORY_SUBJECT,
  PolicyInventoryContract,
  PROBE_RESULT_SUBJECT,
  ProbeResultContract,
  REPROBE_REQUEST_SUBJECT,
  ReprobeRequestContract,
  TEST_CASE_SUBJECT,
  TestCaseContract,
} from '#lumen/contracts';
import type { ConsumeOptions } from '#lumen/messaging';
import type { Consumer } from './ports.js';
import type { ReporterCore } from './reporter.js';
import type { SchedulerCore } from './scheduler.js';

export type Stop = () => Promise<void>;

/** How a deployment names and scopes its consumers: durable services, or a one-shot run. */
export interface ConsumerNaming {
  /** Prefix of durable names ("" for the services). */
  readonly prefix: string;
  /** A one-shot run reads only what is published after it starts, and is forgotten after it ends. */
  readonly oneShot: boolean;
}

type Common = Pick<ConsumeOptions<unknown>, 'onlyNew' | 'inactiveThresholdMs' | 'maxDeliver'>;

function common(naming: ConsumerNaming): Common {
  return naming.oneShot
    ? { onlyNew: true, inactiveThresholdMs: 60_000, maxDeliver: 20 }
    : { maxDeliver: 20 };
}

/** The scheduler's three inputs: cases, re-probe requests, and results (to clear what is in flight). */
export async function consumeForScheduler(
  bus: Consumer,
  scheduler: SchedulerCore,
  naming: ConsumerNaming,
): Promise<Stop[]> {
  const base = common(naming);
  return Promise.all([
    bus.consume({
      ...base,
      contract: TestCaseContract,
      durable: `${naming.prefix}scheduler-cases`,
      filterSubject: TEST_CASE_SUBJECT,
      concurrency: 512,
      handle: (value, delivery) => scheduler.onCase(value, delivery.traceparent),
    }),
    bus.consume({
      ...base,
      contract: ReprobeRequestContract,
      durable: `${naming.prefix}scheduler-reprobes`,
      filterSubject: REPROBE_REQUEST_SUBJECT,
      concurrency: 512,
      handle: (value, delivery) => scheduler.onReprobe(value, delivery.traceparent),
    }),
    bus.consume({
      ...base,
      contract: ProbeResultContract,
      durable: `${naming.prefix}scheduler-results`,
      filterSubject: PROBE_RESULT_SUBJECT,
      concurrency: 16,
      handle: (value) => {
        scheduler.onResult(value);
        return Promise.resolve();
      },
    }),
  ]).then((consumers) => consumers.map((c) => c.stop));
}

/** The reporter's inputs, each in order: cases, results, unschedulable reports and the policy inventory. */
export async function consumeForReporter(
  bus: Consumer,
  reporter: ReporterCore,
  naming: ConsumerNaming,
): Promise<Stop[]> {
  const base = common(naming);
  return Promise.all([
    bus.consume({
      ...base,
      contract: TestCaseContract,
      durable: `${naming.prefix}reporter-cases`,
      filterSubject: TEST_CASE_SUBJECT,
      handle: (value, delivery) => reporter.onCase(value, delivery.traceparent),
    }),
    bus.consume({
      ...base,
      contract: ProbeResultContract,
      durable: `${naming.prefix}reporter-results`,
      filterSubject: PROBE_RESULT_SUBJECT,
      handle: (value, delivery) => reporter.onResult(value, delivery.traceparent),
    }),
    bus.consume({
      ...base,
      contract: CaseUnschedulableContract,
      durable: `${naming.prefix}reporter-unschedulable`,
      filterSubject: CASE_UNSCHEDULABLE_SUBJECT,
      handle: (value, delivery) => reporter.onUnschedulable(value, delivery.traceparent),
    }),
    bus.consume({
      ...base,
      contract: PolicyInventoryContract,
      durable: `${naming.prefix}reporter-policies`,
      filterSubject: POLICY_INVENTORY_SUBJECT,
      handle: (value) => reporter.onPolicyInventory(value),
    }),
  ]).then((consumers) => consumers.map((c) => c.stop));
}
