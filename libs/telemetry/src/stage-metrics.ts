import type { Outcome, Reachability } from '#lumen/contracts';
import {
  casesNotJudged,
  casesWaiting,
  enforcementLatency,
  matrixCells,
  matrixCellsPlanned,
  matrixSweepsPerRotation,
  plannedCases,
  probeBatchDuration,
  probes,
  queueDepth,
  unmodelledPolicies,
  unschedulable,
  verdicts,
} from './metrics.js';

/*
 * The Prometheus side of each stage's metrics port. Each object has the shape of its
 * stage's port (PlannerMetrics, SchedulerMetrics, ProberMetrics, ReporterMetrics); the
 * services pass them in, so a core never touches the global registry itself.
 */

export const plannerPrometheus = {
  planned: (
    cases: number,
    coverage: {
      cells: number;
      obligationCells: number;
      rotated: number;
      sweepsPerRotation: number;
    },
  ): void => {
    plannedCases.set(cases);
    matrixCells.set(coverage.cells);
    matrixCellsPlanned.set(coverage.obligationCells + coverage.rotated);
    matrixSweepsPerRotation.set(coverage.sweepsPerRotation);
  },
  notJudged: (
    objects: readonly {
      policy: { group: string; kind: string; namespace?: string; name: string };
      cases: number;
    }[],
    /** Cases of the plan not judged: a case two objects may affect counts once. */
    distinctCases: number,
  ): void => {
    unmodelledPolicies.reset();
    for (const { policy } of objects)
      unmodelledPolicies.inc({ group: policy.group, kind: policy.kind });
    casesNotJudged.set(distinctCases);
  },
};

export const schedulerPrometheus = {
  queues: (inFlightByNode: ReadonlyMap<string, number>, waiting: number): void => {
    queueDepth.reset();
    for (const [node, depth] of inFlightByNode) queueDepth.set({ node }, depth);
    casesWaiting.set(waiting);
  },
  unschedulable: (): void => {
    unschedulable.inc();
  },
};

export const proberPrometheus = {
  batchProbed: (
    node: string,
    reachabilities: readonly Reachability[],
    durationMs: number,
  ): void => {
    for (const reachability of reachabilities) probes.inc({ node, reachability });
    probeBatchDuration.observe({ node }, durationMs / 1000);
  },
};

export const reporterPrometheus = {
  verdict: (outcome: Outcome, enforcementLatencyMs: number | null): void => {
    verdicts.inc({ outcome });
    if (enforcementLatencyMs !== null) enforcementLatency.observe(enforcementLatencyMs / 1000);
  },
};
