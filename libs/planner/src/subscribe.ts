import {
  CELL_MISMATCH_SUBJECT,
  CellMismatchContract,
  consumeAll,
  type Consumer,
  type ConsumerNaming,
  type Stop,
} from '#lumen/contracts';
import type { PlannerCore } from './core.js';

/** The planner's one input from the bus: rotation cells that disagreed (ADR 0013). */
export function subscribePlanner(
  bus: Consumer,
  planner: PlannerCore,
  naming: ConsumerNaming,
): Promise<Stop[]> {
  return consumeAll(bus, naming, (consume) => [
    consume({
      name: 'planner-cell-mismatches',
      contract: CellMismatchContract,
      filterSubject: CELL_MISMATCH_SUBJECT,
      concurrency: 16,
      handle: async (value) => {
        await planner.onMismatch(value);
      },
    }),
  ]);
}
