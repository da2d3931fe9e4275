import { z } from 'zod';
import { caseId, port, protocol, round } from '../common.js';
import { reachability } from '../probe-result/index.js';
import { attemptEvidence, caseRecord, caseSide, outcome } from '../records/index.js';
import { caseReason, expectedVerdict, ruleRef } from '../test-case/index.js';

/*
 * The reporter's REST API (/api/v1) as one set of schemas: the queries it accepts and the
 * answers it gives. The reporter validates with them, the store types its reads with them,
 * and the OpenAPI document is generated from them, so the three cannot drift apart.
 */

const MAX_PAGE = 500;

const namespaceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name');
const policyName = z
  .string()
  .max(507)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    'must be namespace/name',
  );
const dateTime = z.iso.datetime({ offset: true });

const pageParams = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE)
    .default(100)
    .meta({ description: 'Items per page.' }),
  cursor: z
    .string()
    .max(200)
    .optional()
    .meta({ description: 'The `nextCursor` of the previous page.' }),
};
const namespaceParam = namespaceName
  .optional()
  .meta({ description: 'Cases whose source or destination lies in this namespace.' });
const policyParam = policyName.optional().meta({ description: 'A policy as namespace/name.' });

export const outcomesQuery = z.strictObject({
  namespace: namespaceParam,
  policy: policyParam,
  outcome: outcome.optional().meta({ description: 'Only cases with this latest outcome.' }),
  since: dateTime
    .transform((t) => new Date(t))
    .optional()
    .meta({ description: 'Decided at or after this time (RFC 3339).' }),
  until: dateTime
    .transform((t) => new Date(t))
    .optional()
    .meta({ description: 'Decided at or before this time (RFC 3339).' }),
  ...pageParams,
});
export const pageQuery = z.strictObject(pageParams);
export const coverageQuery = z.strictObject({ policy: policyParam });
export const latencyQuery = z.strictObject({ namespace: namespaceParam, policy: policyParam });
export const casePath = z.strictObject({
  caseId: caseId.meta({ description: 'A case id: 16 lower-case hex digits.' }),
});

export type OutcomesQuery = z.output<typeof outcomesQuery>;
export type PageQuery = z.output<typeof pageQuery>;

/** A page of items; pass `nextCursor` back as `cursor` for the next one (null: the last). */
function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({ items: z.array(item), nextCursor: z.string().nullable() })
    .meta({ id, description: 'A keyset page: its cost does not grow with its depth.' });
}

const observedReachability = z.enum(['reachable', 'blocked']).nullable();

/**
 * One end of a case as the API shows it: in full, or, to a token limited to namespaces,
 * only the namespace of an end outside them (no pods, labels, UIDs, IPs, nodes).
 */
export const apiCaseSide = z.union([caseSide, z.strictObject({ namespace: namespaceName })]).meta({
  id: 'CaseSide',
  description:
    'A pod class and its candidate pods; only `namespace` when the end lies outside a limited token’s namespaces.',
});

export const apiSummary = z
  .object({
    cases: z.number().int(),
    byOutcome: z.record(outcome, z.number().int()),
    undecided: z.number().int(),
    firingAlerts: z.number().int(),
    lastDecidedAt: dateTime.nullable(),
    scope: z.union([z.literal('all'), z.array(z.string())]),
  })
  .meta({ id: 'Summary', description: 'Cases by outcome and alerts firing, within the scope.' });

export const apiOutcome = z
  .object({
    caseId,
    outcome,
    decidedAt: dateTime,
    round,
    attempts: z.number().int(),
    reason: z.string(),
    caseReason,
    expected: expectedVerdict,
    observed: observedReachability,
    source: apiCaseSide,
    destination: apiCaseSide,
    port,
    protocol,
    policy: z.string().nullable(),
    rule: ruleRef.nullable(),
    enforcementLatencyMs: z.number().int().nullable(),
    traceId: z.string().nullable(),
  })
  .meta({ id: 'Outcome', description: 'A case’s latest outcome with what it checks.' });

export const apiAttempt = z
  .object({
    id: z.number().int(),
    round,
    attempt: z.number().int(),
    /** null to a limited token when the source (whose node ran the probe) is outside it. */
    node: z.string().nullable(),
    observedAt: dateTime,
    reachability,
    basis: z.string(),
    evidence: attemptEvidence.nullable(),
    traceId: z.string().nullable(),
    sourcePod: z.string().nullable(),
    destinationPod: z.string().nullable(),
  })
  .meta({ id: 'Attempt', description: 'One probe of a case, with nmap’s evidence.' });

export const apiCase = z
  .object(
    caseRecord.pick({
      caseId: true,
      generation: true,
      reason: true,
      source: true,
      destination: true,
      port: true,
      protocol: true,
      expected: true,
      explanation: true,
      rule: true,
      listenerKnown: true,
      traceparent: true,
    }).shape,
  )
  .extend({
    source: apiCaseSide,
    destination: apiCaseSide,
    policy: z.string().nullable(),
    changedAt: dateTime,
  })
  .meta({ id: 'Case', description: 'The expectation, with the policies that explain it.' });

export const apiHistoryEntry = z.object({ outcome, round, decidedAt: dateTime });

export const apiCaseOutcome = z.object({
  outcome,
  round,
  decidedAt: dateTime,
  reason: z.string(),
  attempts: z.number().int(),
  observed: observedReachability,
  enforcementLatencyMs: z.number().int().nullable(),
  traceId: z.string().nullable(),
});

export const apiOutcomePage = pageOf(apiOutcome, 'OutcomePage');
export const apiAttemptPage = pageOf(apiAttempt, 'AttemptPage');

export const apiCaseDetail = z
  .object({
    case: apiCase,
    outcome: apiCaseOutcome.nullable(),
    history: z.array(apiHistoryEntry),
    attempts: apiAttemptPage,
  })
  .meta({ id: 'CaseDetail', description: 'A case, its outcome, history and newest attempts.' });

export const apiPolicyCoverage = z
  .object({
    policy: z.string(),
    rules: z.number().int(),
    /** Rules with a passing must-allow case and a passing must-deny case. */
    covered: z.number().int(),
    coverage: z.number().min(0).max(1),
    perRule: z.array(
      z.object({
        direction: z.enum(['ingress', 'egress']),
        index: z.number().int(),
        allowVerified: z.boolean(),
        denyVerified: z.boolean(),
      }),
    ),
  })
  .meta({ id: 'PolicyCoverage' });

export const apiMatrixCoverage = z
  .object({
    /** The plan generation the planner's numbers come from. */
    generation: z.number().int(),
    mode: z.enum(['budget', 'full', 'obligations']),
    /** Cells of the class matrix; null for a token limited to namespaces (cluster-wide). */
    cells: z.number().int().nullable(),
    /**
     * Cells verified: stored cases within the caller's scope whose latest outcome is
     * conclusive, plus, for an unscoped caller, the rotation cells that passed in blocks
     * over the last rotation (`rotation.passed`). Never more than `cells`.
     */
    cellsVerified: z.number().int(),
    /**
     * Rotation cells judged in blocks (ADR 0013), from the tallies of the newest
     * `sweepsPerRotation` sweeps: a passing block cell leaves a count, not a stored case.
     * Null when no block was judged, and for a token limited to namespaces (a tally is
     * cluster-wide).
     */
    rotation: z
      .object({
        /** Sweeps whose tallies are counted: at most `sweepsPerRotation`. */
        sweeps: z.number().int(),
        cells: z.number().int(),
        passed: z.number().int(),
        /** Waiting for the next rotation. */
        inconclusive: z.number().int(),
        /** Promoted to full cases, which are stored and judged as any case. */
        mismatched: z.number().int(),
        /** The first and last cell counted. */
        since: dateTime,
        until: dateTime,
      })
      .nullable(),
    /**
     * A dual-stack cluster's cells per IP family, primary first, each with the cells of it
     * verified within the caller's scope (`cells` is null for a scoped caller, as above);
     * null for a single-stack cluster. `cells` and `cellsVerified` above are the primary's.
     */
    families: z
      .array(
        z.object({
          family: z.union([z.literal(4), z.literal(6)]),
          cells: z.number().int().nullable(),
          cellsVerified: z.number().int(),
        }),
      )
      .nullable(),
    obligations: z.number().int().nullable(),
    probeBudget: z.number().int().nullable(),
    /** Sweeps to probe every cell at the budget; null: never (obligations only). */
    sweepsPerRotation: z.number().int().nullable(),
    /** What the plan could not check, and why (the caller's policies only, when scoped). */
    notGenerated: z.array(
      z.object({ reason: caseReason, rule: ruleRef.nullable(), why: z.string() }),
    ),
    /**
     * Policy objects of kinds Lumen does not model (Cilium, Calico, Antrea), found in the
     * cluster, with the plan's cases each may affect: those are not judged, never failed.
     * A token limited to namespaces sees the objects of its namespaces only.
     */
    notJudged: z.array(
      z.object({
        group: z.string(),
        kind: z.string(),
        /** null for a cluster-scoped object, which may affect every pod. */
        namespace: z.string().nullable(),
        name: z.string(),
        cases: z.number().int(),
      }),
    ),
  })
  .meta({
    id: 'MatrixCoverage',
    description: 'The class matrix: how much of what the policies decide is verified.',
  });

export const apiCoverage = z
  .object({ policies: z.array(apiPolicyCoverage), matrix: apiMatrixCoverage.nullable() })
  .meta({
    id: 'Coverage',
    description:
      'Per policy: the share of rules with a verified must-allow and must-deny case; and the class matrix.',
  });

export const apiLatency = z
  .object({
    count: z.number().int(),
    minMs: z.number().int().nullable(),
    p50Ms: z.number().int().nullable(),
    p90Ms: z.number().int().nullable(),
    p99Ms: z.number().int().nullable(),
    maxMs: z.number().int().nullable(),
    meanMs: z.number().int().nullable(),
  })
  .meta({ id: 'Latency', description: 'Enforcement latency statistics in milliseconds.' });

/**
 * The namespace matrix (issue 18): for each (source namespace, destination namespace) with
 * stored cases, how many the policies allow and deny, and how many of them were verified
 * as what. A cell is a tuple, not an object, so that 1,000 namespaces stay a few MB.
 */
export const apiNamespaceMatrix = z
  .object({
    /** Every namespace a cell names, sorted; a cell's ends are indices into it. */
    namespaces: z.array(z.string()),
    /**
     * `[source, destination, allow, deny, pass, fail, flaky, inconclusive, unverified]`:
     * namespace indices, then case counts. allow + deny = pass + fail + flaky +
     * inconclusive + unverified (cases with no outcome yet).
     */
    cells: z.array(z.tuple([z.number().int(), z.number().int()]).rest(z.number().int())),
    /** True when more cells exist than MATRIX_MAX_CELLS: the busiest are kept. */
    truncated: z.boolean(),
  })
  .meta({
    id: 'NamespaceMatrix',
    description:
      'Namespace × namespace: what the policies allow and deny, and what was verified, per pair.',
  });

export const matrixPairPath = z.strictObject({ source: namespaceName, destination: namespaceName });

const cellCounts = {
  allow: z.number().int(),
  deny: z.number().int(),
  pass: z.number().int(),
  fail: z.number().int(),
  flaky: z.number().int(),
  inconclusive: z.number().int(),
  unverified: z.number().int(),
};

export const apiClassMatrix = z
  .object({
    source: z.string(),
    destination: z.string(),
    /**
     * The pod classes of each end, by their labels. An end outside a limited token's
     * namespaces is one class with null labels: its classes are not shown.
     */
    sourceClasses: z.array(
      z.object({ id: z.string(), labels: z.record(z.string(), z.string()).nullable() }),
    ),
    destinationClasses: z.array(
      z.object({ id: z.string(), labels: z.record(z.string(), z.string()).nullable() }),
    ),
    cells: z.array(
      z.object({
        source: z.string(),
        destination: z.string(),
        ...cellCounts,
        cases: z.array(
          z.object({
            caseId,
            port,
            protocol,
            expected: expectedVerdict,
            outcome: outcome.nullable(),
          }),
        ),
      }),
    ),
    /** True when the pair has more than MATRIX_MAX_PAIR_CASES cases: the first are shown. */
    truncated: z.boolean(),
  })
  .meta({
    id: 'ClassMatrix',
    description: 'One namespace pair, class × class, with the cases of each cell.',
  });

export const alertsQuery = z.strictObject({ policy: policyParam });

export const apiRegression = z
  .object({
    caseId,
    fingerprint: z.string(),
    /** The policy the alert is grouped under; null when the scope may not name it. */
    policy: z.string().nullable(),
    severity: z.enum(['critical', 'warning']),
    startsAt: dateTime,
    expected: expectedVerdict,
    sourceNamespace: z.string(),
    destinationNamespace: z.string(),
    port,
    protocol,
  })
  .meta({ id: 'Regression', description: 'A firing alert: a case that passed and now fails.' });

export const apiRegressions = z
  .object({ items: z.array(apiRegression), truncated: z.boolean() })
  .meta({ id: 'Regressions', description: 'Alerts firing now, newest first.' });

export const apiProblem = z
  .object({ statusCode: z.number().int(), message: z.string(), error: z.string() })
  .meta({ id: 'Problem', description: 'An error, with a message that names what is wrong.' });

export type ApiSummary = z.infer<typeof apiSummary>;
export type OutcomeItem = z.infer<typeof apiOutcome>;
export type AttemptItem = z.infer<typeof apiAttempt>;
export type CaseItem = z.infer<typeof apiCase>;
export type ApiCaseSide = z.infer<typeof apiCaseSide>;
export type CaseDetail = z.infer<typeof apiCaseDetail>;
export type PolicyCoverage = z.infer<typeof apiPolicyCoverage>;
export type LatencyStats = z.infer<typeof apiLatency>;
export type MatrixCoverageAnswer = z.infer<typeof apiMatrixCoverage>;
export type NamespaceMatrix = z.infer<typeof apiNamespaceMatrix>;
export type ClassMatrix = z.infer<typeof apiClassMatrix>;
export type Regression = z.infer<typeof apiRegression>;

export interface Page<T> {
  readonly items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** A malformed or foreign cursor: the caller's mistake, answered with 400. */
export class CursorError extends Error {}

/** Opaque cursors name their kind, so one endpoint's cursor is refused by another. */
export function encodePageCursor(kind: string, key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url');
}

/** The key a cursor of this kind holds; CursorError for any other string. */
export function decodePageCursor(cursor: string | undefined, kind: string): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!decoded.startsWith(`${kind}:`) || decoded.length > 80)
    throw new CursorError('invalid cursor');
  return decoded.slice(kind.length + 1);
}

/** One route of the API: what it takes and what it answers. */
export interface ApiRoute {
  readonly path: string;
  readonly summary: string;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly answer: z.ZodType;
  /** Answers 404 when the case does not exist or lies outside the caller's scope. */
  readonly notFound?: boolean;
}

/** Every GET route but the OpenAPI document itself, as the reporter serves it. */
export const API_ROUTES = {
  summary: {
    path: '/api/v1/summary',
    summary: 'Cases by outcome, alerts firing',
    answer: apiSummary,
  },
  outcomes: {
    path: '/api/v1/outcomes',
    summary: 'Latest outcome per case, filtered and paged by case id',
    query: outcomesQuery,
    answer: apiOutcomePage,
  },
  caseDetail: {
    path: '/api/v1/cases/{caseId}',
    summary: 'One case: expectation and its explanation, outcome, history, newest attempts',
    params: casePath,
    query: pageQuery,
    answer: apiCaseDetail,
    notFound: true,
  },
  attempts: {
    path: '/api/v1/cases/{caseId}/attempts',
    summary: 'A case’s probe attempts, newest first, with evidence and trace ids',
    params: casePath,
    query: pageQuery,
    answer: apiAttemptPage,
    notFound: true,
  },
  coverage: {
    path: '/api/v1/coverage',
    summary: 'Per policy: share of rules with a verified must-allow and must-deny case',
    query: coverageQuery,
    answer: apiCoverage,
  },
  matrix: {
    path: '/api/v1/matrix',
    summary: 'Namespace × namespace: cases the policies allow and deny, and what was verified',
    answer: apiNamespaceMatrix,
  },
  matrixPair: {
    path: '/api/v1/matrix/{source}/{destination}',
    summary: 'One namespace pair, class × class, with the cases of each cell',
    params: matrixPairPath,
    answer: apiClassMatrix,
    notFound: true,
  },
  regressions: {
    path: '/api/v1/regressions',
    summary: 'Alerts firing now: cases that passed and now fail',
    query: alertsQuery,
    answer: apiRegressions,
  },
  latency: {
    path: '/api/v1/latency',
    summary: 'Enforcement latency: policy change to first probe that saw it enforced',
    query: latencyQuery,
    answer: apiLatency,
  },
} as const satisfies Record<string, ApiRoute>;

export const API_PAGE_LIMIT = MAX_PAGE;

/**
 * The API's other bounds (issue 16): no route takes more query parameters than this, each
 * given once as a plain value; the request line and its query string fit in
 * API_MAX_URL_BYTES; and no request has a body (every route is a GET).
 */
export const API_MAX_QUERY_PARAMETERS = 10;
export const API_MAX_URL_BYTES = 4096;

/** Namespace pairs /api/v1/matrix answers at most (the busiest); 1,000 namespaces fit. */
export const MATRIX_MAX_CELLS = 200_000;
/** Cases of one namespace pair /api/v1/matrix/{source}/{destination} lists at most. */
export const MATRIX_MAX_PAIR_CASES = 5_000;
/** Firing alerts /api/v1/regressions lists at most. */
export const REGRESSIONS_MAX = 1_000;
