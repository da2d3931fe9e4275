import { z } from 'zod';
import { SUBJECT_PREFIX, type Contract } from '../common.js';
import { caseReason, ipFamily, ruleRef } from '../test-case/index.js';

/**
 * The planner's view of the class matrix after each plan: `lumen.v1.coverage`. The
 * reporter joins it with the outcomes it stores to say how much of what the policies
 * decide is verified, and keeps what the plan could not check, with the reason.
 */
export const MATRIX_COVERAGE_SUBJECT = `${SUBJECT_PREFIX}.coverage`;

/** Not-generated entries carried per message; the count says how many there were. */
export const MATRIX_COVERAGE_NOT_GENERATED = 500;

export const matrixCoverageSchema = z.strictObject({
  generation: z.number().int().min(0),
  mode: z.enum(['budget', 'full', 'obligations']),
  /** Cells: (source class, destination class, declared TCP/UDP port); no pod to itself. */
  cells: z.number().int().min(0),
  /** Cases the obligations need, and the matrix cells among them. */
  obligations: z.number().int().min(0),
  obligationCells: z.number().int().min(0),
  /** Cells this plan added by rotation, within its probe budget. */
  rotated: z.number().int().min(0),
  probeBudget: z.number().int().min(0).nullable(),
  /** Sweeps to probe every cell at this budget; null: never (obligations only). */
  sweepsPerRotation: z.number().int().min(1).nullable(),
  /**
   * A dual-stack cluster's cells per IP family, primary first (a further family's cells
   * are between classes with pods addressed in it). Absent for a single-stack cluster.
   */
  families: z
    .array(z.strictObject({ family: ipFamily, cells: z.number().int().min(0) }))
    .max(2)
    .optional(),
  notGeneratedCount: z.number().int().min(0),
  notGenerated: z
    .array(
      z.strictObject({
        reason: caseReason,
        rule: ruleRef.optional(),
        why: z.string().max(500),
      }),
    )
    .max(MATRIX_COVERAGE_NOT_GENERATED),
  /**
   * Policy objects of kinds Lumen does not model (a CNI's own), each with the plan's cases
   * it may affect, which are not judged. Absent from reports of planners before it existed.
   */
  notJudged: z
    .array(
      z.strictObject({
        group: z.string().min(1).max(253),
        kind: z.string().min(1).max(63),
        /** Absent for a cluster-scoped object, which may affect every pod. */
        namespace: z.string().min(1).max(63).optional(),
        name: z.string().min(1).max(253),
        cases: z.number().int().min(0),
      }),
    )
    .max(MATRIX_COVERAGE_NOT_GENERATED)
    .optional(),
});

export type MatrixCoverageReport = z.infer<typeof matrixCoverageSchema>;

export const MatrixCoverageContract: Contract<MatrixCoverageReport> = {
  name: 'MatrixCoverage',
  schema: matrixCoverageSchema,
};
