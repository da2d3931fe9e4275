import {
  CASE_UNSCHEDULABLE_SUBJECT,
  CaseUnschedulableContract,
  MATRIX_COVERAGE_SUBJECT,
  MatrixCoverageContract,
  POLICY_INVENTORY_SUBJECT,
  PolicyInventoryContract,
  PROBE_RESULT_SUBJECTS,
  ProbeResultContract,
  TEST_CASE_SUBJECT,
  TestCaseContract,
  consumeAll,
  type Consumer,
  type ConsumerNaming,
  type Stop,
} from '#lumen/contracts';
import type { ReporterCore } from './core.js';
import type { ResultGate } from './result-gate.js';

/**
 * The reporter's inputs: cases and results several at once (the core keeps each case's
 * work in turn), unschedulable reports, the matrix and the policy inventory in order.
 */
export function subscribeReporter(
  bus: Consumer,
  reporter: ReporterCore,
  naming: ConsumerNaming,
  results: ResultGate,
): Promise<Stop[]> {
  return consumeAll(bus, naming, (consume) => [
    consume({
      name: 'reporter-cases',
      contract: TestCaseContract,
      filterSubject: TEST_CASE_SUBJECT,
      // Many at once: the core gathers arriving cases into one write.
      concurrency: 256,
      handle: (value, delivery) => reporter.onCase(value, delivery.traceparent),
    }),
    consume({
      name: 'reporter-results',
      contract: ProbeResultContract,
      filterSubject: PROBE_RESULT_SUBJECTS,
      concurrency: 8,
      // Only a result that answers a batch dispatched to its node is judged (ADR 0014).
      handle: async (value, delivery) => {
        const refused = await results.admit(value, delivery.subject, delivery.deliveryCount);
        if (refused === 'duplicate') return;
        if (refused) return refused;
        try {
          await reporter.onResult(value, delivery.traceparent);
        } catch (error) {
          results.release(value);
          throw error;
        }
      },
    }),
    consume({
      name: 'reporter-unschedulable',
      contract: CaseUnschedulableContract,
      filterSubject: CASE_UNSCHEDULABLE_SUBJECT,
      handle: (value, delivery) => reporter.onUnschedulable(value, delivery.traceparent),
    }),
    consume({
      name: 'reporter-coverage',
      contract: MatrixCoverageContract,
      filterSubject: MATRIX_COVERAGE_SUBJECT,
      handle: (value) => reporter.onMatrixCoverage(value),
    }),
    consume({
      name: 'reporter-policies',
      contract: PolicyInventoryContract,
      filterSubject: POLICY_INVENTORY_SUBJECT,
      handle: (value) => reporter.onPolicyInventory(value),
    }),
  ]);
}
