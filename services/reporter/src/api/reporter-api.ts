import {
  BadRequestException,
  NotFoundException,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { z } from 'zod';
import type { ApiTokens, Caller } from '#lumen/access';
import { caseId as caseIdSchema } from '#lumen/contracts';
import { CursorError, type PageRequest, type ResultsQuery } from '#lumen/store';

const page = {
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(200).optional(),
};
const namespace = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name');
const policy = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    'must be namespace/name',
  );
const time = z.iso.datetime({ offset: true }).transform((t) => new Date(t));

export const outcomesQuery = z.strictObject({
  namespace: namespace.optional(),
  policy: policy.optional(),
  outcome: z.enum(['pass', 'fail', 'flaky', 'inconclusive']).optional(),
  since: time.optional(),
  until: time.optional(),
  ...page,
});
export const pageQuery = z.strictObject(page);
export const coverageQuery = z.strictObject({ policy: policy.optional() });
export const latencyQuery = z.strictObject({
  namespace: namespace.optional(),
  policy: policy.optional(),
});

/**
 * The API's rules in one place: who is calling (bearer token → scope), what they asked
 * (validated query), and answers that never reveal what the scope hides: a case outside
 * it is "not found", exactly like a case that does not exist.
 */
export class ReporterApi {
  private results: ResultsQuery | undefined;

  constructor(private readonly tokens: ApiTokens) {}

  attach(results: ResultsQuery): void {
    this.results = results;
  }

  async summary(authorization: string | undefined): Promise<object> {
    const { results, caller } = this.begin(authorization);
    return { ...(await results.summary(caller.namespaces)), scope: caller.namespaces ?? 'all' };
  }

  async outcomes(authorization: string | undefined, query: unknown): Promise<object> {
    const { results, caller } = this.begin(authorization);
    const q = parse(outcomesQuery, query);
    const filter = {
      ...(q.namespace ? { namespace: q.namespace } : {}),
      ...(q.policy ? { policy: q.policy } : {}),
      ...(q.outcome ? { outcome: q.outcome } : {}),
      ...(q.since ? { since: q.since } : {}),
      ...(q.until ? { until: q.until } : {}),
    };
    return paged(() => results.outcomes(filter, caller.namespaces, pageRequest(q)));
  }

  async caseDetail(authorization: string | undefined, id: string, query: unknown): Promise<object> {
    const { results, caller } = this.begin(authorization);
    const caseId = parse(caseIdSchema, id);
    const q = parse(pageQuery, query);
    const found = await paged(() => results.caseDetail(caseId, caller.namespaces, pageRequest(q)));
    if (!found) throw new NotFoundException('case not found');
    return found;
  }

  async attempts(authorization: string | undefined, id: string, query: unknown): Promise<object> {
    const { results, caller } = this.begin(authorization);
    const caseId = parse(caseIdSchema, id);
    const q = parse(pageQuery, query);
    const found = await paged(() => results.attempts(caseId, caller.namespaces, pageRequest(q)));
    if (!found) throw new NotFoundException('case not found');
    return found;
  }

  async coverage(authorization: string | undefined, query: unknown): Promise<object> {
    const { results, caller } = this.begin(authorization);
    const q = parse(coverageQuery, query);
    return { policies: await results.coverage(caller.namespaces, q.policy) };
  }

  async latency(authorization: string | undefined, query: unknown): Promise<object> {
    const { results, caller } = this.begin(authorization);
    const q = parse(latencyQuery, query);
    return results.latency(caller.namespaces, {
      ...(q.namespace ? { namespace: q.namespace } : {}),
      ...(q.policy ? { policy: q.policy } : {}),
    });
  }

  private begin(authorization: string | undefined): { results: ResultsQuery; caller: Caller } {
    const caller = this.tokens.callerOf(authorization);
    if (!caller)
      throw new UnauthorizedException(
        this.tokens.size === 0
          ? 'the API has no tokens configured (API_TOKENS_FILE)'
          : 'a valid bearer token is required',
      );
    if (!this.results) throw new ServiceUnavailableException('the store is not open yet');
    return { results: this.results, caller };
  }
}

/** A validated page query as the store takes it. */
function pageRequest(q: { limit: number; cursor?: string | undefined }): PageRequest {
  return { limit: q.limit, ...(q.cursor ? { cursor: q.cursor } : {}) };
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new BadRequestException(
    result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '),
  );
}

async function paged<T>(query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (error) {
    if (error instanceof CursorError) throw new BadRequestException('cursor: invalid cursor');
    throw error;
  }
}
