import {
  CaseUnschedulableContract,
  MatrixCoverageContract,
  PolicyInventoryContract,
  ProbeResultContract,
  TestCaseContract,
  consumeAll,
  serviceConsumer,
  type Consumer,
  type ConsumerNaming,
  type Stop,
} from '#lumen/contracts';
import type { ReporterCore } from './core.js';
import type { ResultGate } from './result-gate.js';

/** Runs a handler's work; the service's StoreOutageGuard waits out store outages in it. */
export type HandlerRun = <T>(work: () => Promise<T>) => Promise<T>;

const runOnce: HandlerRun = (work) => work();

/**
 * The reporter's inputs: cases and results several at once (the core keeps each case's
 * work in turn), unschedulable reports, the matrix and the policy inventory in order.
 */
export function subscribeReporter(
  bus: Consumer,
  reporter: ReporterCore,
  naming: ConsumerNaming,
  results: ResultGate,
  run: HandlerRun = runOnce,
): Promise<Stop[]> {
  return consumeAll(bus, naming, (consume) => [
    consume({
      ...serviceConsumer('reporter-cases'),
      contract: TestCaseContract,
      handle: (value, delivery) => run(() => reporter.onCase(value, delivery.traceparent)),
    }),
    consume({
      ...serviceConsumer('reporter-results'),
      contract: ProbeResultContract,
      // Only a result that answers a batch dispatched to its node is judged (ADR 0014).
      handle: (value, delivery) =>
        run(async () => {
          const refused = await results.admit(value, delivery.subject, delivery.deliveryCount);
          if (refused === 'duplicate') return;
          if (refused) return refused;
          try {
            await reporter.onResult(value, delivery.traceparent);
          } catch (error) {
            results.release(value);
            throw error;
          }
          return undefined;
        }),
    }),
    consume({
      ...serviceConsumer('reporter-unschedulable'),
      contract: CaseUnschedulableContract,
      handle: (value, delivery) => run(() => reporter.onUnschedulable(value, delivery.traceparent)),
    }),
    consume({
      ...serviceConsumer('reporter-coverage'),
      contract: MatrixCoverageContract,
      handle: (value) => run(() => reporter.onMatrixCoverage(value)),
    }),
    consume({
      ...serviceConsumer('reporter-policies'),
      contract: PolicyInventoryContract,
      handle: (value) => run(() => reporter.onPolicyInventory(value)),
    }),
  ]);
}
