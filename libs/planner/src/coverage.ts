import type { Expectation } from '#lumen/scenario';
import type { PolicyEngine } from '#lumen/policy';
import type { PlannedCase } from './plan.js';

export interface ExpectationCoverage {
  readonly row: Expectation;
  /** The case that probes this row's classes, port and protocol, when the plan has one. */
  readonly caseId?: string;
  /** Why no case probes it. */
  readonly notGenerated?: string;
}

/**
 * Which of a scenario's expect rows the plan probes: a row is covered by the case over the
 * same source class, destination class, port and protocol (pods of one class are
 * interchangeable to the policies); every other row is reported with the reason.
 */
export function expectationCoverage(
  engine: PolicyEngine,
  cases: readonly PlannedCase[],
  rows: readonly Expectation[],
): ExpectationCoverage[] {
  const byKey = new Map(
    cases.map((c) => [`${c.source.key}\n${c.destination.key}\n${c.port}/${c.protocol}`, c]),
  );
  return rows.map((row) => {
    const from = engine.classOf(row.from);
    const to = engine.classOf(row.to);
    if (!from || !to)
      return {
        row,
        notGenerated: `pod ${from ? `${row.to.namespace}/${row.to.name}` : `${row.from.namespace}/${row.from.name}`} is not in the cluster`,
      };
    const found = byKey.get(`${from.key}\n${to.key}\n${row.port}/${row.protocol}`);
    if (found) return { row, caseId: found.caseId };
    return {
      row,
      notGenerated:
        'the plan probes the obligations and, within its budget, the matrix cells probed least recently; --coverage full probes every cell',
    };
  });
}
