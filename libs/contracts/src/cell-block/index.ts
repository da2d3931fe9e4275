import { z } from 'zod';
import {
  SUBJECT_PREFIX,
  caseId,
  name,
  podRef,
  port,
  round,
  timestamp,
  type Contract,
} from '../common.js';
import { expectedVerdict, podEndpoint } from '../test-case/index.js';
import { reachability } from '../probe-result/index.js';

/** Rotation cells of one source class, for the scheduler (ADR 0013): `lumen.v1.cell-blocks`. */
export const CELL_BLOCK_SUBJECT = `${SUBJECT_PREFIX}.cell-blocks`;

/** Cells of one block: the probe batch's limit of targets. */
export const MAX_BLOCK_CELLS = 1000;

export const cellBlockSchema = z
  .strictObject({
    blockId: z.string().min(1).max(64),
    /** The plan generation (the cells' round). */
    generation: round,
    source: z.strictObject({ namespace: name, classKey: z.string().min(1).max(4096) }),
    /** Candidate pods of the source class; one of them probes the whole block. */
    sources: z.array(podEndpoint).min(1).max(20),
    /** Each destination class once, with a few of its pods (rotated by the scheduler). */
    destinations: z
      .array(z.strictObject({ namespace: name, pods: z.array(podEndpoint).min(1).max(3) }))
      .min(1)
      .max(MAX_BLOCK_CELLS),
    cells: z
      .array(
        z.strictObject({
          /** The id the cell has as a case: a promoted cell keeps its history. */
          cellId: caseId,
          /** Index into `destinations`. */
          destination: z
            .number()
            .int()
            .min(0)
            .max(MAX_BLOCK_CELLS - 1),
          port,
          /** Matrix cells are TCP and UDP listeners. */
          protocol: z.enum(['TCP', 'UDP']),
          expected: expectedVerdict,
        }),
      )
      .min(1)
      .max(MAX_BLOCK_CELLS),
  })
  .refine((block) => block.cells.every((c) => c.destination < block.destinations.length), {
    message: 'a cell names a destination the block does not list',
    path: ['cells'],
  });

export type CellBlock = z.infer<typeof cellBlockSchema>;

export const CellBlockContract: Contract<CellBlock> = {
  name: 'CellBlock',
  schema: cellBlockSchema,
};

/**
 * A rotation cell whose probe disagreed with its expected verdict, for the planner, which
 * publishes it as a full case: `lumen.v1.cell-mismatches`.
 */
export const CELL_MISMATCH_SUBJECT = `${SUBJECT_PREFIX}.cell-mismatches`;

export const cellMismatchSchema = z.strictObject({
  cellId: caseId,
  generation: round,
  source: podRef,
  destination: podRef,
  port,
  protocol: z.enum(['TCP', 'UDP']),
  expected: expectedVerdict,
  observed: reachability,
  at: timestamp,
});

export type CellMismatch = z.infer<typeof cellMismatchSchema>;

export const CellMismatchContract: Contract<CellMismatch> = {
  name: 'CellMismatch',
  schema: cellMismatchSchema,
};
