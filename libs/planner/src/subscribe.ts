import {
  CellMismatchContract,
  consumeAll,
  serviceConsumer,
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
      ...serviceConsumer('planner-cell-mismatches'),
      contract: CellMismatchContract,
      handle: async (value) => {
        await planner.onMismatch(value);
      },
    }),
  ]);
}
