import { z } from 'zod';
import {
  SUBJECT_PREFIX,
  caseId,
  ipAddress,
  name,
  round,
  nodeName,
  podRef,
  port,
  protocol,
  timestamp,
  traceparent,
  type Contract,
} from '../common.js';
import { expectedVerdict } from '../test-case/index.js';

/** Work for one node's prober: `lumen.v1.probe.<node>`. */
export function probeBatchSubject(node: string): string {
  return `${SUBJECT_PREFIX}.probe.${node}`;
}
export const PROBE_BATCH_SUBJECTS = `${SUBJECT_PREFIX}.probe.>`;

/**
 * The durable consumer a node's prober takes its batches from: made by the scheduler, bound
 * by the prober. Dots, which NATS reads as separators, become underscores.
 */
export function proberDurable(node: string): string {
  return `prober-${node.replace(/\./g, '_')}`;
}

/**
 * The inbox prefix of a node's prober: NATS replies to its requests arrive under it, and
 * its user may subscribe to nothing else, so it cannot read other probers' replies.
 */
export function proberInboxPrefix(node: string): string {
  return `_INBOX.prober.${node.replace(/\./g, '_')}`;
}

export const probeBatchSchema = z.strictObject({
  batchId: z.string().min(1).max(64),
  node: nodeName,
  /** 1 for the first try of these cases; re-probes and re-dispatches count up. */
  attempt: z.number().int().min(1).max(100),
  /** The pod whose network namespace the probes run in. */
  source: podRef.extend({ uid: z.string().min(1).max(64) }),
  targets: z
    .array(
      z.strictObject({
        caseId,
        /** The case's round (its plan generation), which the reporter judges attempts in. */
        round,
        /** The pod probed; absent through a Service, where the network picks the backend. */
        destination: podRef.optional(),
        /**
         * Probed through this Service: `ip` and `port` are its ClusterIP and Service port, and
         * the probe is a TCP connect scan (a raw scan cannot see the translated replies).
         */
        service: z.strictObject({ namespace: name, name }).optional(),
        ip: ipAddress,
        port,
        protocol,
        /** The destination is known to answer on this port (its own listener, DNS…). */
        listenerKnown: z.boolean(),
        /** A rotation cell of a block (ADR 0013): the verdict the policies give, echoed back. */
        expected: expectedVerdict.optional(),
      }),
    )
    .min(1)
    .max(1000),
  issuedAt: timestamp,
  /** The cell block the batch probes (its targets then carry `expected`). */
  blockId: z.string().min(1).max(64).optional(),
  /** The traceparent of each case's trace, by case id. */
  traces: z.record(caseId, traceparent).optional(),
});

export type ProbeBatch = z.infer<typeof probeBatchSchema>;

export const ProbeBatchContract: Contract<ProbeBatch> = {
  name: 'ProbeBatch',
  schema: probeBatchSchema,
};
