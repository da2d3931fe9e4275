import { z } from 'zod';
import {
  SUBJECT_PREFIX,
  caseId,
  ipAddress,
  labels,
  name,
  nodeName,
  port,
  protocol,
  timestamp,
  type Contract,
} from '../common.js';

/** The planner's cases, for the scheduler: `lumen.v1.cases`. */
export const TEST_CASE_SUBJECT = `${SUBJECT_PREFIX}.cases`;

export const podClass = z.strictObject({
  namespace: name,
  labels,
  /** The engine's class identity, from which the case id is hashed. */
  classKey: z.string().min(1).max(4096),
});

/** A running pod of a class, from which the scheduler picks (and rotates). */
export const podEndpoint = z.strictObject({
  namespace: name,
  name,
  uid: z.string().min(1).max(64),
  ip: ipAddress,
  node: nodeName,
});

export const ruleRef = z.strictObject({
  policy: z.string().min(3).max(507),
  direction: z.enum(['ingress', 'egress']),
  index: z.number().int().min(0),
});

/** A rule of a cluster-scoped policy (ClusterNetworkPolicy, v1alpha1 Admin/Baseline). */
export const tierRuleRef = z.strictObject({
  tier: z.enum(['Admin', 'Baseline']),
  policy: z.string().min(3).max(300),
  priority: z.number().int().min(0).max(1001),
  direction: z.enum(['ingress', 'egress']),
  index: z.number().int().min(0),
  name: z.string().max(100).optional(),
  action: z.enum(['Accept', 'Deny', 'Pass']),
  failClosed: z.literal(true).optional(),
});

const side = z.strictObject({
  isolated: z.boolean(),
  policies: z.array(z.string().max(507)).max(1000),
  allowedBy: z.array(ruleRef).max(1000),
  allowed: z.boolean(),
  /** Present when cluster-scoped policies have rules for the pod: the tier that decided. */
  tier: z.enum(['Admin', 'NetworkPolicy', 'Baseline', 'default']).optional(),
  decidedBy: tierRuleRef.optional(),
  passedBy: z.array(tierRuleRef).max(100).optional(),
  ambiguous: z.string().max(2000).optional(),
  /**
   * Set only in the API's answer to a token limited to namespaces, on the side of an end
   * outside them: its policies and rules are not named (docs/security.md).
   */
  hidden: z.literal(true).optional(),
});

/** Why the policies decide as they do, per side: isolation, selecting policies, admitting rules. */
export const explanation = z.strictObject({
  egress: side,
  ingress: side,
  unprobeable: z.string().max(300).optional(),
});

/**
 * Why a case exists: an obligation (a rule's must-allow, a near miss of one of its peers,
 * an isolated class's unlisted source, destination or port) or a matrix cell taken by
 * rotation. `sample` is what cases of plans before rotation said; stored ones still read.
 */
export const caseReason = z.enum([
  'must-allow',
  /** A rule of a cluster-scoped policy decides (Accept, Deny) or passes the connection on. */
  'tier-rule',
  'near-miss-namespace',
  'near-miss-pods',
  'near-miss-both',
  'unlisted-source',
  'unlisted-destination',
  'unlisted-port',
  'rotation',
  'sample',
  /** A backend reaching itself through its own Service (issue 19), with the same pod-to-itself connection. */
  'hairpin',
]);

export const expectedVerdict = z.enum(['allow', 'deny']);

/**
 * A case probed through a Service instead of to a pod's IP (issue 19): the connection an
 * application makes, to the ClusterIP and Service port, which the network translates to a
 * backend before policies judge it. The case's own port is the backends' target port.
 */
export const ipFamily = z.union([z.literal(4), z.literal(6)]);

export const servicePath = z.strictObject({
  namespace: name,
  name,
  /** The ClusterIP probed. */
  clusterIP: ipAddress,
  /** The Service port probed. */
  port,
  /** The pod-to-pod case of the same connection: a failure only through the Service is told apart. */
  podCaseId: caseId,
  /**
   * The source is itself a backend of the Service: a pod reaching its own Service. The spec
   * leaves traffic from a pod to itself to the implementation, so these are reported apart.
   */
  hairpin: z.boolean(),
});

export const testCaseSchema = z.strictObject({
  caseId,
  /** The plan generation that produced it; higher is newer. */
  generation: z.number().int().min(0),
  reason: caseReason,
  source: podClass,
  destination: podClass,
  port,
  protocol,
  expected: expectedVerdict,
  explanation,
  /** The rule the case checks, when it checks one. */
  rule: ruleRef.optional(),
  /** When the last change relevant to this case was seen: the start of its settle window. */
  changedAt: timestamp,
  /** Candidate pods of each class (bounded); empty when none runs yet. */
  sources: z.array(podEndpoint).max(20),
  destinations: z.array(podEndpoint).max(20),
  /** The destination declares this port and protocol, so it is known to answer. */
  listenerKnown: z.boolean(),
  /** No real pod matches the source class: the scheduler may create a synthetic one. */
  syntheticSource: z.boolean(),
  /** Source and destination are the same class and no other pod can serve. */
  loopback: z.boolean(),
  /** Probed through this Service rather than to a destination pod's IP. */
  via: servicePath.optional(),
  /**
   * Over this IP family rather than the pods' primary one: the twin of a dual-stack pod's
   * case, whose candidate pods are at their addresses of it.
   */
  family: ipFamily.optional(),
});

export type TestCase = z.infer<typeof testCaseSchema>;
export type PodClassRef = z.infer<typeof podClass>;
export type PodEndpoint = z.infer<typeof podEndpoint>;
export type RuleRef = z.infer<typeof ruleRef>;
export type Explanation = z.infer<typeof explanation>;
export type CaseReason = z.infer<typeof caseReason>;
export type ExpectedVerdict = z.infer<typeof expectedVerdict>;
export type ServicePath = z.infer<typeof servicePath>;

export const TestCaseContract: Contract<TestCase> = { name: 'TestCase', schema: testCaseSchema };
