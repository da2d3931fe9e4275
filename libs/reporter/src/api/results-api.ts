import type { z } from 'zod';
import { visiblePolicy, type ApiTokens, type Caller } from '#lumen/access';
import {
  API_ROUTES,
  API_MAX_QUERY_PARAMETERS,
  CursorError,
  type ApiSummary,
  type CaseDetail,
  type LatencyStats,
  type MatrixCoverageAnswer,
  type OutcomeItem,
  type AttemptItem,
  type Page,
  type PolicyCoverage,
  type ClassMatrix,
  type NamespaceMatrix,
  type Regression,
} from '#lumen/contracts';
import type { ResultsReader } from '../ports.js';
import { attemptView, caseDetailView, foreignEnds, outcomeView } from './tenant-view.js';

/** An answer other than 200, with a message that names what is wrong. */
export class ApiProblem extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ApiProblem';
  }
}

/**
 * The API's rules in one place: who is calling (bearer token → scope), what they asked
 * (validated by the routes' schemas in libs/contracts, the same that document them), and
 * answers that never reveal what the scope hides: a case outside it is "not found",
 * exactly like a case that does not exist, and of a case it sees, the end outside it is
 * its namespace only (tenant-view.ts). Framework-free; the reporter service maps
 * ApiProblem to HTTP.
 */
export class ResultsApi {
  private results: ResultsReader | undefined;

  constructor(private tokens: ApiTokens) {}

  /** Takes a rotated tokens file: calls from now on are checked against these. */
  replaceTokens(tokens: ApiTokens): void {
    this.tokens = tokens;
  }

  attach(results: ResultsReader): void {
    this.results = results;
  }

  /** Whether a store answers the API's reads yet. */
  get attached(): boolean {
    return this.results !== undefined;
  }

  async summary(authorization: string | undefined): Promise<ApiSummary> {
    const { results, caller } = this.begin(authorization);
    const scope = caller.namespaces ? [...caller.namespaces] : 'all';
    return { ...(await results.summary(caller.namespaces)), scope };
  }

  async outcomes(authorization: string | undefined, query: unknown): Promise<Page<OutcomeItem>> {
    const { results, caller } = this.begin(authorization);
    const { limit, cursor, ...filter } = parse(API_ROUTES.outcomes.query, query);
    // Filtering by another tenant's policy name would tell whether it exists.
    if (!visiblePolicy(filter.policy, caller.namespaces)) return { items: [], nextCursor: null };
    const page = await paged(() =>
      results.outcomes(definedOnly(filter), caller.namespaces, pageRequest(limit, cursor)),
    );
    return { ...page, items: page.items.map((i) => outcomeView(i, caller.namespaces)) };
  }

  async caseDetail(
    authorization: string | undefined,
    params: unknown,
    query: unknown,
  ): Promise<CaseDetail> {
    const { results, caller } = this.begin(authorization);
    const { caseId } = parse(API_ROUTES.caseDetail.params, params);
    const { limit, cursor } = parse(API_ROUTES.caseDetail.query, query);
    const found = await paged(() =>
      results.caseDetail(caseId, caller.namespaces, pageRequest(limit, cursor)),
    );
    if (!found) throw new ApiProblem(404, 'case not found');
    return caseDetailView(found, caller.namespaces);
  }

  async attempts(
    authorization: string | undefined,
    params: unknown,
    query: unknown,
  ): Promise<Page<AttemptItem>> {
    const { results, caller } = this.begin(authorization);
    const { caseId } = parse(API_ROUTES.attempts.params, params);
    const { limit, cursor } = parse(API_ROUTES.attempts.query, query);
    const ends = await results.caseEnds(caseId, caller.namespaces);
    const found =
      ends &&
      (await paged(() => results.attempts(caseId, caller.namespaces, pageRequest(limit, cursor))));
    if (!ends || !found) throw new ApiProblem(404, 'case not found');
    const foreign = foreignEnds(ends, caller.namespaces);
    return { ...found, items: found.items.map((a) => attemptView(a, caller.namespaces, foreign)) };
  }

  async coverage(
    authorization: string | undefined,
    query: unknown,
  ): Promise<{ policies: PolicyCoverage[]; matrix: MatrixCoverageAnswer | null }> {
    const { results, caller } = this.begin(authorization);
    const q = parse(API_ROUTES.coverage.query, query);
    return {
      policies: await results.coverage(caller.namespaces, q.policy),
      matrix: await results.matrix(caller.namespaces),
    };
  }

  async matrix(authorization: string | undefined): Promise<NamespaceMatrix> {
    const { results, caller } = this.begin(authorization);
    return results.namespaceMatrix(caller.namespaces);
  }

  async matrixPair(authorization: string | undefined, params: unknown): Promise<ClassMatrix> {
    const { results, caller } = this.begin(authorization);
    const { source, destination } = parse(API_ROUTES.matrixPair.params, params);
    const found = await results.classMatrix(source, destination, caller.namespaces);
    if (!found) throw new ApiProblem(404, 'no cases of this namespace pair');
    return found;
  }

  async regressions(
    authorization: string | undefined,
    query: unknown,
  ): Promise<{ items: Regression[]; truncated: boolean }> {
    const { results, caller } = this.begin(authorization);
    const q = parse(API_ROUTES.regressions.query, query);
    if (!visiblePolicy(q.policy, caller.namespaces)) return { items: [], truncated: false };
    return results.regressions(caller.namespaces, q.policy);
  }

  async latency(authorization: string | undefined, query: unknown): Promise<LatencyStats> {
    const { results, caller } = this.begin(authorization);
    const q = parse(API_ROUTES.latency.query, query);
    if (!visiblePolicy(q.policy, caller.namespaces)) return NO_LATENCY;
    return results.latency(caller.namespaces, definedOnly(q));
  }

  private begin(authorization: string | undefined): { results: ResultsReader; caller: Caller } {
    const caller = this.tokens.callerOf(authorization);
    if (!caller)
      throw new ApiProblem(
        401,
        this.tokens.size === 0
          ? 'the API has no tokens configured (API_TOKENS_FILE)'
          : 'a valid bearer token is required',
      );
    if (!this.results) throw new ApiProblem(503, 'the store is not open yet');
    return { results: this.results, caller };
  }
}

/** What a scope sees of a policy it may not name: nothing measured, as for one that does not exist. */
const NO_LATENCY: LatencyStats = {
  count: 0,
  minMs: null,
  p50Ms: null,
  p90Ms: null,
  p99Ms: null,
  maxMs: null,
  meanMs: null,
};

/** A validated page query as the store takes it. */
function pageRequest(
  limit: number,
  cursor: string | undefined,
): { limit: number; cursor?: string } {
  return { limit, ...(cursor ? { cursor } : {}) };
}

/** The filter without the parameters that were not given. */
function definedOnly<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/**
 * A query within the API's bounds: at most API_MAX_QUERY_PARAMETERS parameters, each once
 * and a plain value (`a=1&a=2` and `a[b]=1` are refused, never read as something else).
 */
export function boundedQuery(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ApiProblem(400, 'query: must be name=value parameters');
  const entries = Object.entries(value);
  if (entries.length > API_MAX_QUERY_PARAMETERS)
    throw new ApiProblem(
      400,
      `query: ${entries.length} parameters; at most ${API_MAX_QUERY_PARAMETERS} are accepted`,
    );
  for (const [name, parameter] of entries) {
    if (Array.isArray(parameter))
      throw new ApiProblem(400, `${name}: given ${parameter.length} times; give it once`);
    if (typeof parameter !== 'string')
      throw new ApiProblem(400, `${name}: must be a plain value, not a structure`);
  }
  return value as Record<string, string>;
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(boundedQuery(value));
  if (result.success) return result.data;
  throw new ApiProblem(
    400,
    result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '),
  );
}

async function paged<T>(query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (error) {
    if (error instanceof CursorError) throw new ApiProblem(400, 'cursor: invalid cursor');
    throw error;
  }
}
