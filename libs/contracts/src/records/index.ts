import { z } from 'zod';
import { caseId, nodeName, port, protocol, round } from '../common.js';
import { nmapEvidence, reachability } from '../probe-result/index.js';
import {
  caseReason,
  expectedVerdict,
  explanation,
  podClass,
  podEndpoint,
  ruleRef,
  servicePath,
  ipFamily,
} from '../test-case/index.js';

/**
 * What the store keeps, as typed records: the reporter writes and reads these, the store
 * maps them to and from its rows (and checks the JSON columns with these schemas on the
 * way out), so nothing downstream casts a column back into shape.
 */

/** One end of a case: its pod class and the candidate pods the plan named for it. */
export const caseSide = podClass.extend({ pods: z.array(podEndpoint).max(20) });

export const outcome = z.enum(['pass', 'fail', 'flaky', 'inconclusive']);

/** nmap's state and reason, and the command line that produced it. */
export const attemptEvidence = nmapEvidence.extend({
  command: z.array(z.string().max(4096)).max(2000).optional(),
});

export const caseRecord = z.strictObject({
  caseId,
  generation: z.number().int().min(0),
  reason: caseReason,
  source: caseSide,
  destination: caseSide,
  port,
  protocol,
  expected: expectedVerdict,
  explanation,
  rule: ruleRef.nullable(),
  /** When the last change relevant to the case was seen: the start of its settle window. */
  changedAt: z.date(),
  updatedAt: z.date(),
  listenerKnown: z.boolean(),
  loopback: z.boolean(),
  /** Probed through a Service (null: to a pod's IP). */
  via: servicePath.nullable(),
  /** Over this IP family rather than the pods' primary one (null: the primary). */
  family: ipFamily.nullable(),
  /** The traceparent of the round's plan span: the case's trace. */
  traceparent: z.string().nullable(),
});

export const attemptRecord = z.strictObject({
  id: z.number().int(),
  caseId,
  round,
  attempt: z.number().int().min(0),
  batchId: z.string(),
  node: z.union([nodeName, z.literal('-')]),
  observedAt: z.date(),
  reachability,
  basis: z.string(),
  evidence: attemptEvidence.nullable(),
  traceId: z.string().nullable(),
  /** "namespace/name" of the pods probed from and to, when known. */
  sourcePod: z.string().nullable().optional(),
  destinationPod: z.string().nullable().optional(),
});

export const outcomeRecord = z.strictObject({
  caseId,
  outcome,
  round,
  decidedAt: z.date(),
  reason: z.string(),
  attempts: z.number().int().min(0),
  enforcementLatencyMs: z.number().nullable(),
  traceId: z.string().nullable(),
  /** The newest conclusive observation (null when none was). */
  observed: z.enum(['reachable', 'blocked']).nullable(),
});

export type CaseSide = z.infer<typeof caseSide>;
export type Outcome = z.infer<typeof outcome>;
export type AttemptEvidence = z.infer<typeof attemptEvidence>;
export type CaseRecord = z.infer<typeof caseRecord>;
export type AttemptRecord = z.infer<typeof attemptRecord>;
export type NewAttempt = Omit<AttemptRecord, 'id'>;
export type OutcomeRecord = z.infer<typeof outcomeRecord>;

/** What the store keeps of probe attempts, outcome history and cases; the rest is deleted. */
export interface RetentionPolicy {
  /** Each case's newest attempts, whatever they saw. */
  readonly attemptsPerCase: number;
  /**
   * How long outcome history, the attempts that decided a failing or changed outcome,
   * cases the planner no longer plans, resolved alerts and delivered notifications are kept.
   */
  readonly maxAgeMs: number;
  /** Rows one statement deletes at most: each statement is short, and so is each lock. */
  readonly batchSize: number;
}

/** Rows deleted by one application of the retention policy. */
export interface RetentionReport {
  readonly attempts: number;
  readonly history: number;
  readonly cases: number;
  /** Resolved alerts and delivered outbox entries older than the age. */
  readonly alerts: number;
}

/** Rotation cells judged in blocks (ADR 0013), as a generation's tally adds them. */
export interface RotationCounts {
  readonly cells: number;
  readonly passed: number;
  readonly inconclusive: number;
  readonly mismatched: number;
}
