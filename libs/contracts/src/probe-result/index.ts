import { z } from 'zod';
import {
  SUBJECT_PREFIX,
  caseId,
  ipAddress,
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

/**
 * What a node's prober saw, for the reporter: `lumen.v1.results.<node>`. The node is in the
 * subject so that NATS permissions can let each prober speak for its own node only.
 */
export function probeResultSubject(node: string): string {
  return `${SUBJECT_PREFIX}.results.${node}`;
}
export const PROBE_RESULT_SUBJECTS = `${SUBJECT_PREFIX}.results.>`;

/** The node a result subject speaks for, or undefined for a subject of another kind. */
export function nodeOfResultSubject(subject: string): string | undefined {
  const prefix = `${SUBJECT_PREFIX}.results.`;
  return subject.startsWith(prefix) && subject.length > prefix.length
    ? subject.slice(prefix.length)
    : undefined;
}

/** What one probe says of a connection: it got through, it was stopped, or nothing can be said. */
export const reachability = z.enum(['reachable', 'blocked', 'inconclusive']);
export type Reachability = z.infer<typeof reachability>;

/** nmap's own words about one port: state, reason and TTL of the answer. */
export const nmapEvidence = z.strictObject({
  state: z.string().max(40),
  reason: z.string().max(60),
  reasonTtl: z.number().int().min(0).max(255).optional(),
});

export const observationSchema = z.strictObject({
  caseId,
  round,
  /** The pod probed, as the batch named it. */
  destination: podRef.optional(),
  ip: ipAddress,
  port,
  protocol,
  reachability,
  /** Why, in words; for inconclusive: source pod gone, netns not found, nmap error… */
  basis: z.string().max(500),
  evidence: nmapEvidence.optional(),
  /** Echoed from a rotation cell's target (ADR 0013): judged at once, not stored per probe. */
  expected: expectedVerdict.optional(),
});

export const probeResultSchema = z.strictObject({
  batchId: z.string().min(1).max(64),
  node: nodeName,
  attempt: z.number().int().min(1).max(100),
  /**
   * The stream sequence of the batch answered: the reporter reads that batch back and
   * accepts the result only if it answers it (same node, batch, source and targets).
   */
  batchSequence: z.number().int().min(1),
  source: podRef,
  observations: z.array(observationSchema).min(1).max(1000),
  /** Echoed from the batch: the cell block it probed. */
  blockId: z.string().min(1).max(64).optional(),
  startedAt: timestamp,
  durationMs: z.number().min(0),
  /** The nmap command line, for the evidence (no secrets in it). */
  command: z.array(z.string().max(4096)).max(2000).optional(),
  /** The traceparent of each case's probe span, by case id. */
  traces: z.record(caseId, traceparent).optional(),
});

export type Observation = z.infer<typeof observationSchema>;
export type ProbeResult = z.infer<typeof probeResultSchema>;

export const ProbeResultContract: Contract<ProbeResult> = {
  name: 'ProbeResult',
  schema: probeResultSchema,
};

/** An observation in one line, for people: reachability, why, and nmap's state and reason. */
export function evidenceText(reachability: string, basis: string, evidence: object | null): string {
  const nmap = evidence as { state?: string; reason?: string } | null;
  return [
    `${reachability}: ${basis}`,
    nmap?.state ? `nmap state ${nmap.state}` : '',
    nmap?.reason ? `(${nmap.reason})` : '',
  ]
    .filter(Boolean)
    .join(' ')
    .slice(0, 500);
}
