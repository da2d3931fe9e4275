import type { DataSource, SelectQueryBuilder } from 'typeorm';
import {
  AlertEntity,
  AttemptEntity,
  CaseEntity,
  OutcomeEntity,
  OutcomeHistoryEntity,
  PolicyRulesEntity,
} from './entities.js';

/** The namespaces a caller may see; undefined sees every namespace. */
export type Scope = readonly string[] | undefined;

export interface OutcomeFilter {
  readonly namespace?: string;
  /** "namespace/name" */
  readonly policy?: string;
  readonly outcome?: string;
  readonly since?: Date;
  readonly until?: Date;
}

export interface PageRequest {
  readonly limit: number;
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export interface OutcomeItem {
  readonly caseId: string;
  readonly outcome: string;
  readonly decidedAt: string;
  readonly round: number;
  readonly attempts: number;
  readonly reason: string;
  readonly caseReason: string;
  readonly expected: string;
  readonly observed: string | null;
  readonly source: object;
  readonly destination: object;
  readonly port: number;
  readonly protocol: string;
  readonly policy: string | null;
  readonly rule: object | null;
  readonly enforcementLatencyMs: number | null;
  readonly traceId: string | null;
}

export interface AttemptItem {
  readonly id: number;
  readonly round: number;
  readonly attempt: number;
  readonly node: string;
  readonly observedAt: string;
  readonly reachability: string;
  readonly basis: string;
  readonly evidence: object | null;
  readonly traceId: string | null;
  readonly sourcePod: string | null;
  readonly destinationPod: string | null;
}

export interface PolicyCoverage {
  readonly policy: string;
  readonly rules: number;
  /** Rules with a passing must-allow case and a passing must-deny case. */
  readonly covered: number;
  readonly coverage: number;
  readonly perRule: readonly {
    readonly direction: string;
    readonly index: number;
    readonly allowVerified: boolean;
    readonly denyVerified: boolean;
  }[];
}

export interface LatencyStats {
  readonly count: number;
  readonly minMs: number | null;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly meanMs: number | null;
}

/** A malformed or foreign cursor: the caller's mistake, answered with 400. */
export class CursorError extends Error {}

export const MAX_PAGE = 500;

/**
 * The API's reads over the store. Every query takes the caller's scope, so a tenant's
 * token sees only cases whose source or destination lies in its namespaces, whatever the
 * filter. Pages are keyset pages (`WHERE key > cursor ORDER BY key LIMIT n`): the cost
 * of a page does not grow with how deep it is.
 */
export class ResultsQuery {
  constructor(private readonly dataSource: DataSource) {}

  async summary(scope: Scope): Promise<{
    cases: number;
    byOutcome: Record<string, number>;
    undecided: number;
    firingAlerts: number;
    lastDecidedAt: string | null;
  }> {
    const total = await this.scoped(this.cases(), scope)
      .select('COUNT(*)', 'n')
      .getRawOne<{ n: string | number }>();
    const grouped = await this.scoped(this.casesWithOutcomes(), scope)
      .select('o.outcome', 'outcome')
      .addSelect('COUNT(*)', 'n')
      .addSelect('MAX(o.decided_at)', 'last')
      .groupBy('o.outcome')
      .getRawMany<{ outcome: string; n: string | number; last: string | Date | null }>();
    const byOutcome: Record<string, number> = { pass: 0, fail: 0, flaky: 0, inconclusive: 0 };
    for (const g of grouped) byOutcome[g.outcome] = Number(g.n);
    const decided = grouped.reduce((sum, g) => sum + Number(g.n), 0);
    const last = grouped
      .map((g) => (g.last === null ? null : iso(g.last)))
      .filter((d): d is string => d !== null)
      .sort()
      .pop();
    return {
      cases: Number(total?.n ?? 0),
      byOutcome,
      undecided: Number(total?.n ?? 0) - decided,
      firingAlerts: await this.firingAlerts(scope),
      lastDecidedAt: last ?? null,
    };
  }

  async outcomes(
    filter: OutcomeFilter,
    scope: Scope,
    page: PageRequest,
  ): Promise<Page<OutcomeItem>> {
    const qb = this.scoped(this.casesWithOutcomes(), scope).select([
      'c.case_id AS case_id',
      'o.outcome AS outcome',
      'o.decided_at AS decided_at',
      'o.round AS round',
      'o.attempts AS attempts',
      'o.reason AS reason',
      'c.reason AS case_reason',
      'c.expected AS expected',
      'o.observed AS observed',
      'c.source AS source',
      'c.destination AS destination',
      'c.port AS port',
      'c.protocol AS protocol',
      'c.policy AS policy',
      'c.rule AS rule',
      'o.enforcement_latency_ms AS enforcement_latency_ms',
      'o.trace_id AS trace_id',
    ]);
    if (filter.namespace)
      qb.andWhere('(c.source_namespace = :ns OR c.destination_namespace = :ns)', {
        ns: filter.namespace,
      });
    if (filter.policy) qb.andWhere('c.policy = :policy', { policy: filter.policy });
    if (filter.outcome) qb.andWhere('o.outcome = :outcome', { outcome: filter.outcome });
    if (filter.since) qb.andWhere('o.decided_at >= :since', { since: this.time(filter.since) });
    if (filter.until) qb.andWhere('o.decided_at <= :until', { until: this.time(filter.until) });
    const after = decodeCursor(page.cursor, 'o');
    if (after !== undefined) qb.andWhere('c.case_id > :after', { after });
    const rows = await qb
      .orderBy('c.case_id', 'ASC')
      .limit(clampLimit(page.limit) + 1)
      .getRawMany<Record<string, unknown>>();
    return pageOf(rows.map(outcomeItem), clampLimit(page.limit), (i) =>
      encodeCursor('o', i.caseId),
    );
  }

  /** One case, when the scope sees it: the case, its outcome and history, and its newest attempts. */
  async caseDetail(
    caseId: string,
    scope: Scope,
    attemptsPage: PageRequest,
  ): Promise<{
    case: Record<string, unknown>;
    outcome: Record<string, unknown> | null;
    history: { outcome: string; round: number; decidedAt: string }[];
    attempts: Page<AttemptItem>;
  } | null> {
    const row = await this.scoped(this.cases(), scope)
      .select('c.*')
      .andWhere('c.case_id = :caseId', { caseId })
      .getRawOne<Record<string, unknown>>();
    if (!row) return null;
    const outcome = await this.dataSource
      .createQueryBuilder()
      .select('o.*')
      .from(OutcomeEntity, 'o')
      .where('o.case_id = :caseId', { caseId })
      .getRawOne<Record<string, unknown>>();
    const history = await this.dataSource
      .createQueryBuilder()
      .select(['h.outcome AS outcome', 'h.round AS round', 'h.decided_at AS decided_at'])
      .from(OutcomeHistoryEntity, 'h')
      .where('h.case_id = :caseId', { caseId })
      .orderBy('h.id', 'ASC')
      .getRawMany<{ outcome: string; round: number | string; decided_at: string | Date }>();
    return {
      case: caseItem(row),
      outcome: outcome
        ? {
            outcome: outcome['outcome'],
            round: Number(outcome['round']),
            decidedAt: iso(outcome['decided_at']),
            reason: outcome['reason'],
            attempts: Number(outcome['attempts']),
            observed: outcome['observed'],
            enforcementLatencyMs: nullableNumber(outcome['enforcement_latency_ms']),
            traceId: outcome['trace_id'],
          }
        : null,
      history: history.map((h) => ({
        outcome: h.outcome,
        round: Number(h.round),
        decidedAt: iso(h.decided_at),
      })),
      attempts: await this.attemptsOf(caseId, attemptsPage),
    };
  }

  /** A case's attempts, newest first; null when the scope does not see the case. */
  async attempts(
    caseId: string,
    scope: Scope,
    page: PageRequest,
  ): Promise<Page<AttemptItem> | null> {
    const visible = await this.scoped(this.cases(), scope)
      .select('c.case_id', 'case_id')
      .andWhere('c.case_id = :caseId', { caseId })
      .getRawOne<{ case_id: string }>();
    return visible ? this.attemptsOf(caseId, page) : null;
  }

  /** The query plan of an attempts page, for the test that keeps it on the index. */
  async explainAttemptsPage(caseId: string, cursor: number): Promise<string> {
    const [sql, params] = this.attemptsQuery(caseId, cursor, 50).getQueryAndParameters();
    const postgres = this.dataSource.options.type === 'postgres';
    const rows = await this.dataSource.query<Record<string, unknown>[]>(
      `${postgres ? 'EXPLAIN' : 'EXPLAIN QUERY PLAN'} ${sql}`,
      params,
    );
    return rows.map((r) => String(r['QUERY PLAN'] ?? r['detail'])).join('\n');
  }

  /** Each policy's rules and which have a verified must-allow and must-deny case. */
  async coverage(scope: Scope, policy?: string): Promise<PolicyCoverage[]> {
    const inventory = await this.dataSource
      .createQueryBuilder()
      .select(['p.policy AS policy', 'p.ingress AS ingress', 'p.egress AS egress'])
      .from(PolicyRulesEntity, 'p')
      .orderBy('p.policy', 'ASC')
      .getRawMany<{ policy: string; ingress: string; egress: string }>();
    const policies = inventory.filter(
      (p) =>
        (!policy || p.policy === policy) &&
        (scope === undefined || scope.includes(p.policy.split('/')[0] ?? '')),
    );
    if (policies.length === 0) return [];
    const verified = await this.scoped(this.casesWithOutcomes(), scope)
      .select([
        'c.policy AS policy',
        'c.rule_direction AS direction',
        'c.rule_index AS rule_index',
        'c.expected AS expected',
      ])
      .andWhere("o.outcome = 'pass'")
      .andWhere('c.rule_index IS NOT NULL')
      .andWhere(policy ? 'c.policy = :policy' : '1 = 1', policy ? { policy } : {})
      .getRawMany<{ policy: string; direction: string; rule_index: number; expected: string }>();
    const seen = new Set(
      verified.map((v) => `${v.policy}|${v.direction}|${v.rule_index}|${v.expected}`),
    );
    return policies.map((p) => {
      const rules = [
        ...(JSON.parse(p.ingress) as number[]).map((index) => ({ direction: 'ingress', index })),
        ...(JSON.parse(p.egress) as number[]).map((index) => ({ direction: 'egress', index })),
      ].map((r) => ({
        ...r,
        allowVerified: seen.has(`${p.policy}|${r.direction}|${r.index}|allow`),
        denyVerified: seen.has(`${p.policy}|${r.direction}|${r.index}|deny`),
      }));
      const covered = rules.filter((r) => r.allowVerified && r.denyVerified).length;
      return {
        policy: p.policy,
        rules: rules.length,
        covered,
        coverage: rules.length === 0 ? 1 : covered / rules.length,
        perRule: rules,
      };
    });
  }

  async latency(
    scope: Scope,
    filter: Pick<OutcomeFilter, 'namespace' | 'policy'> = {},
  ): Promise<LatencyStats> {
    const qb = this.scoped(this.casesWithOutcomes(), scope)
      .select('o.enforcement_latency_ms', 'ms')
      .andWhere('o.enforcement_latency_ms IS NOT NULL');
    if (filter.namespace)
      qb.andWhere('(c.source_namespace = :ns OR c.destination_namespace = :ns)', {
        ns: filter.namespace,
      });
    if (filter.policy) qb.andWhere('c.policy = :policy', { policy: filter.policy });
    const values = (
      await qb.orderBy('o.enforcement_latency_ms', 'ASC').getRawMany<{ ms: number | string }>()
    ).map((r) => Number(r.ms));
    return latencyStats(values);
  }

  private async firingAlerts(scope: Scope): Promise<number> {
    const qb = this.dataSource
      .createQueryBuilder()
      .select('a.namespaces', 'namespaces')
      .from(AlertEntity, 'a')
      .where("a.status = 'firing'");
    const rows = await qb.getRawMany<{ namespaces: string }>();
    return rows.filter(
      (r) => scope === undefined || scope.some((n) => r.namespaces.includes(`,${n},`)),
    ).length;
  }

  private attemptsQuery(
    caseId: string,
    before: number | undefined,
    limit: number,
  ): SelectQueryBuilder<object> {
    const qb = this.dataSource
      .createQueryBuilder()
      .select([
        'a.id AS id',
        'a.round AS round',
        'a.attempt AS attempt',
        'a.node AS node',
        'a.observed_at AS observed_at',
        'a.reachability AS reachability',
        'a.basis AS basis',
        'a.evidence AS evidence',
        'a.trace_id AS trace_id',
        'a.source_pod AS source_pod',
        'a.destination_pod AS destination_pod',
      ])
      .from(AttemptEntity, 'a')
      .where('a.case_id = :caseId', { caseId });
    if (before !== undefined) qb.andWhere('a.id < :before', { before });
    return qb.orderBy('a.id', 'DESC').limit(limit);
  }

  private async attemptsOf(caseId: string, page: PageRequest): Promise<Page<AttemptItem>> {
    const cursor = decodeCursor(page.cursor, 'a');
    const before = cursor === undefined ? undefined : Number(cursor);
    if (before !== undefined && !Number.isSafeInteger(before))
      throw new CursorError('invalid cursor');
    const limit = clampLimit(page.limit);
    const rows = await this.attemptsQuery(caseId, before, limit + 1).getRawMany<
      Record<string, unknown>
    >();
    return pageOf(rows.map(attemptItem), limit, (i) => encodeCursor('a', String(i.id)));
  }

  private cases(): SelectQueryBuilder<object> {
    return this.dataSource.createQueryBuilder().from(CaseEntity, 'c');
  }

  private casesWithOutcomes(): SelectQueryBuilder<object> {
    return this.cases().innerJoin(OutcomeEntity.options.name, 'o', 'o.case_id = c.case_id');
  }

  /** Limits a query to the scope's cases: source or destination in one of its namespaces. */
  private scoped(qb: SelectQueryBuilder<object>, scope: Scope): SelectQueryBuilder<object> {
    if (scope === undefined) return qb.where('1 = 1');
    if (scope.length === 0) return qb.where('1 = 0');
    return qb.where(
      '(c.source_namespace IN (:...scope) OR c.destination_namespace IN (:...scope))',
      {
        scope: [...scope],
      },
    );
  }

  /** A time as the driver compares it: SQLite stores UTC text, PostgreSQL a timestamp. */
  private time(date: Date): Date | string {
    return this.dataSource.options.type === 'postgres'
      ? date
      : date.toISOString().replace('T', ' ').replace('Z', '');
  }
}

export function latencyStats(sorted: readonly number[]): LatencyStats {
  const at = (q: number): number | null =>
    sorted.length === 0
      ? null
      : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null);
  return {
    count: sorted.length,
    minMs: sorted[0] ?? null,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    maxMs: sorted[sorted.length - 1] ?? null,
    meanMs:
      sorted.length === 0 ? null : Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(limit)));
}

function pageOf<T>(rows: T[], limit: number, cursorOf: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? cursorOf(last) : null };
}

/** Opaque cursors name their kind, so one endpoint's cursor is refused by another. */
function encodeCursor(kind: string, key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string | undefined, kind: string): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!decoded.startsWith(`${kind}:`) || decoded.length > 80)
    throw new CursorError('invalid cursor');
  return decoded.slice(kind.length + 1);
}

function iso(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  const text = String(value);
  return new Date(
    /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`,
  ).toISOString();
}

function parsed(value: unknown): object | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? (JSON.parse(value) as object) : value;
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function outcomeItem(r: Record<string, unknown>): OutcomeItem {
  return {
    caseId: String(r['case_id']),
    outcome: String(r['outcome']),
    decidedAt: iso(r['decided_at']),
    round: Number(r['round']),
    attempts: Number(r['attempts']),
    reason: String(r['reason']),
    caseReason: String(r['case_reason']),
    expected: String(r['expected']),
    observed: (r['observed'] as string | null) ?? null,
    source: parsed(r['source']) ?? {},
    destination: parsed(r['destination']) ?? {},
    port: Number(r['port']),
    protocol: String(r['protocol']),
    policy: (r['policy'] as string | null) ?? null,
    rule: parsed(r['rule']),
    enforcementLatencyMs: nullableNumber(r['enforcement_latency_ms']),
    traceId: (r['trace_id'] as string | null) ?? null,
  };
}

function attemptItem(r: Record<string, unknown>): AttemptItem {
  return {
    id: Number(r['id']),
    round: Number(r['round']),
    attempt: Number(r['attempt']),
    node: String(r['node']),
    observedAt: iso(r['observed_at']),
    reachability: String(r['reachability']),
    basis: String(r['basis']),
    evidence: parsed(r['evidence']),
    traceId: (r['trace_id'] as string | null) ?? null,
    sourcePod: (r['source_pod'] as string | null) ?? null,
    destinationPod: (r['destination_pod'] as string | null) ?? null,
  };
}

function caseItem(r: Record<string, unknown>): Record<string, unknown> {
  return {
    caseId: r['case_id'],
    generation: Number(r['generation']),
    reason: r['reason'],
    source: parsed(r['source']),
    destination: parsed(r['destination']),
    port: Number(r['port']),
    protocol: r['protocol'],
    expected: r['expected'],
    explanation: parsed(r['explanation']),
    rule: parsed(r['rule']),
    policy: r['policy'] ?? null,
    changedAt: iso(r['changed_at']),
    listenerKnown: Boolean(r['listener_known']),
    traceparent: r['traceparent'] ?? null,
  };
}
