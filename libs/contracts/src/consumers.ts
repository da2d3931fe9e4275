import { CASE_UNSCHEDULABLE_SUBJECT } from './case-unschedulable/index.js';
import { CELL_BLOCK_SUBJECT, CELL_MISMATCH_SUBJECT } from './cell-block/index.js';
import { MATRIX_COVERAGE_SUBJECT } from './matrix-coverage/index.js';
import { POLICY_INVENTORY_SUBJECT } from './policy-inventory/index.js';
import { PROBE_RESULT_SUBJECTS } from './probe-result/index.js';
import { REPROBE_REQUEST_SUBJECT } from './reprobe-request/index.js';
import { TEST_CASE_SUBJECT } from './test-case/index.js';
import type { ConsumerNaming } from './ports/bus.js';

/** A durable consumer of a service: what it reads, and how many messages it holds at once. */
export interface ServiceConsumer {
  readonly filterSubject: string;
  /** Messages handled at once (default 1: in order); the server's max_ack_pending follows. */
  readonly concurrency?: number;
}

/**
 * Every durable consumer of the planner, scheduler and reporter, in one place. The
 * scheduler makes them all (stream and consumer management is its alone, ADR 0014); the
 * planner and reporter bind to theirs. Each stage's subscribe() reads its entries here.
 */
export const SERVICE_CONSUMERS = {
  'planner-cell-mismatches': { filterSubject: CELL_MISMATCH_SUBJECT, concurrency: 16 },
  // Cases wait here, unacked, while probers are busy: the more wait, the fuller the
  // batches (one nmap per source pod) they are cut into.
  'scheduler-cases': { filterSubject: TEST_CASE_SUBJECT, concurrency: 2048 },
  // Up to 64,000 rotation cells wait here for room on their nodes (ADR 0013).
  'scheduler-cell-blocks': { filterSubject: CELL_BLOCK_SUBJECT, concurrency: 64 },
  'scheduler-reprobes': { filterSubject: REPROBE_REQUEST_SUBJECT, concurrency: 512 },
  'scheduler-results': { filterSubject: PROBE_RESULT_SUBJECTS, concurrency: 16 },
  // Many at once: the reporter's core gathers arriving cases into one write.
  'reporter-cases': { filterSubject: TEST_CASE_SUBJECT, concurrency: 256 },
  'reporter-results': { filterSubject: PROBE_RESULT_SUBJECTS, concurrency: 8 },
  'reporter-unschedulable': { filterSubject: CASE_UNSCHEDULABLE_SUBJECT },
  'reporter-coverage': { filterSubject: MATRIX_COVERAGE_SUBJECT },
  'reporter-policies': { filterSubject: POLICY_INVENTORY_SUBJECT },
} as const satisfies Record<string, ServiceConsumer>;

export type ServiceConsumerName = keyof typeof SERVICE_CONSUMERS;

/** Deliveries of a durable consumer's message before it is dead-lettered. */
export const DURABLE_MAX_DELIVER = 20;

/** A catalogue entry with its name, for a stage's consume(). */
export function serviceConsumer(
  name: ServiceConsumerName,
): ServiceConsumer & { readonly name: string } {
  return { name, ...SERVICE_CONSUMERS[name] };
}

/** Every service consumer as the scheduler makes it, under a deployment's naming. */
export function durableServiceConsumers(naming: Pick<ConsumerNaming, 'prefix'>): {
  readonly durable: string;
  readonly filterSubject: string;
  readonly concurrency: number;
  readonly maxDeliver: number;
}[] {
  return Object.entries(SERVICE_CONSUMERS).map(([name, spec]: [string, ServiceConsumer]) => ({
    durable: `${naming.prefix}${name}`,
    filterSubject: spec.filterSubject,
    concurrency: Math.max(1, spec.concurrency ?? 1),
    maxDeliver: DURABLE_MAX_DELIVER,
  }));
}
