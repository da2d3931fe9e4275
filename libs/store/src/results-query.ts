import { createHash } from 'node:crypto';
import type { Scope } from '#lumen/access';
import type { DataSource, SelectQueryBuilder } from 'typeorm';
import type { z } from 'zod';
import {
  API_PAGE_LIMIT,
  CursorError,
  decodePageCursor,
  encodePageCursor,
  matrixCoverageSchema,
  type MatrixCoverageReport,
  apiAttempt,
  apiCase,
  apiCaseOutcome,
  apiHistoryEntry,
  apiOutcome,
  MATRIX_MAX_CELLS,
  MATRIX_MAX_PAIR_CASES,
  REGRESSIONS_MAX,
  type ApiSummary,
  type ClassMatrix,
  type NamespaceMatrix,
  type Regression,
  type AttemptItem,
  type CaseDetail,
  type LatencyStats,
  type MatrixCoverageAnswer,
  type OutcomeItem,
  type Page,
  type PolicyCoverage,
} from '#lumen/contracts';
import {
  AlertEntity,
  AttemptEntity,
  CaseEntity,
  MatrixCoverageEntity,
  OutcomeEntity,
  OutcomeHistoryEntity,
  PolicyRulesEntity,
  RotationTallyEntity,
} from './entities.js';

/** The namespaces a caller may see (libs/access); undefined sees every namespace. */
export type { Scope };

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

export const MAX_PAGE = API_PAGE_LIMIT;

/**
 * The API's reads over the store. Every query takes the caller's scope, so a tenant's
 * token sees only cases whose source or destination lies in its namespaces, whatever the
 * filter. Pages are keyset pages (`WHERE key > cursor ORDER BY key LIMIT n`): the cost
 * of a page does not grow with how deep it is.
 */
export class ResultsQuery {
  constructor(private readonly dataSource: DataSource) {}

  async summary(scope: Scope): Promise<Omit<ApiSummary, 'scope'>> {
    const total = await this.scoped(this.cases(), scope)
      .select('COUNT(*)', 'n')
      .getRawOne<{ n: string | number }>();
    const grouped = await this.scoped(this.casesWithOutcomes(), scope)
      .select('o.outcome', 'outcome')
      .addSelect('COUNT(*)', 'n')
      .addSelect('MAX(o.decided_at)', 'last')
      .groupBy('o.outcome')
      .getRawMany<{ outcome: string; n: string | number; last: string | Date | null }>();
    const byOutcome: ApiSummary['byOutcome'] = { pass: 0, fail: 0, flaky: 0, inconclusive: 0 };
    for (const g of grouped)
      if (g.outcome in byOutcome) byOutcome[g.outcome as keyof typeof byOutcome] = Number(g.n);
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
    const after = decodePageCursor(page.cursor, 'o');
    if (after !== undefined) qb.andWhere('c.case_id > :after', { after });
    const rows = await qb
      .orderBy('c.case_id', 'ASC')
      .limit(clampLimit(page.limit) + 1)
      .getRawMany<Record<string, unknown>>();
    return pageOf(rows.map(outcomeItem), clampLimit(page.limit), (i: OutcomeItem) =>
      encodePageCursor('o', i.caseId),
    );
  }

  /** One case, when the scope sees it: the case, its outcome and history, and its newest attempts. */
  async caseDetail(
    caseId: string,
    scope: Scope,
    attemptsPage: PageRequest,
  ): Promise<CaseDetail | null> {
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
      .getRawMany<Record<string, unknown>>();
    return {
      case: fromRow(apiCase, row),
      outcome: outcome ? fromRow(apiCaseOutcome, outcome) : null,
      history: history.map((h) => fromRow(apiHistoryEntry, h)),
      attempts: await this.attemptsOf(caseId, attemptsPage),
    };
  }

  /** A case's attempts, newest first; null when the scope does not see the case. */
  async attempts(
    caseId: string,
    scope: Scope,
    page: PageRequest,
  ): Promise<Page<AttemptItem> | null> {
    return (await this.caseEnds(caseId, scope)) ? this.attemptsOf(caseId, page) : null;
  }

  /** The namespaces of a case's ends; null when the scope does not see the case. */
  async caseEnds(
    caseId: string,
    scope: Scope,
  ): Promise<{ source: string; destination: string } | null> {
    const row = await this.scoped(this.cases(), scope)
      .select(['c.source_namespace AS source', 'c.destination_namespace AS destination'])
      .andWhere('c.case_id = :caseId', { caseId })
      .getRawOne<{ source: string; destination: string }>();
    return row ? { source: row.source, destination: row.destination } : null;
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
      // One row per rule and expectation, not per case: many cases check one rule.
      .distinct(true)
      .getRawMany<{ policy: string; direction: string; rule_index: number; expected: string }>();
    const seen = new Set(
      verified.map((v) => `${v.policy}|${v.direction}|${v.rule_index}|${v.expected}`),
    );
    return policies.map((p) => {
      const rules = [
        ...(JSON.parse(p.ingress) as number[]).map((index) => ({
          direction: 'ingress' as const,
          index,
        })),
        ...(JSON.parse(p.egress) as number[]).map((index) => ({
          direction: 'egress' as const,
          index,
        })),
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

  /**
   * The planner's newest view of the matrix with the cells verified so far: stored cases to
   * a declared TCP/UDP listener (no pod to itself, not through a Service, over the primary
   * family) with a conclusive latest outcome, within the scope, and the same per family of a
   * dual-stack cluster. Cluster-wide numbers are for an unscoped caller only.
   */
  async matrix(scope: Scope): Promise<MatrixCoverageAnswer | null> {
    const row = await this.dataSource
      .getRepository(MatrixCoverageEntity)
      .findOneBy({ id: 'current' });
    if (!row) return null;
    const parsed = matrixCoverageSchema.safeParse(
      typeof row.report === 'string' ? JSON.parse(row.report) : row.report,
    );
    if (!parsed.success) throw new Error('the stored matrix coverage is not a valid report');
    const report = parsed.data;
    const verified = await this.verifiedCells(scope, null);
    const sees = (policy: string | undefined): boolean =>
      scope === undefined || (policy !== undefined && scope.includes(policy.split('/')[0] ?? ''));
    const whole = scope === undefined;
    const rotation = whole ? await this.lastRotation(report.sweepsPerRotation) : null;
    const cellsVerified = verified + (rotation?.passed ?? 0);
    const primaryVerified = whole ? Math.min(cellsVerified, report.cells) : cellsVerified;
    return {
      generation: report.generation,
      mode: report.mode,
      cells: whole ? report.cells : null,
      // Cases of cells the plan no longer has stay stored: never more than the matrix.
      cellsVerified: primaryVerified,
      rotation,
      families: await this.familyCells(report, scope, primaryVerified),
      obligations: whole ? report.obligations : null,
      probeBudget: whole ? report.probeBudget : null,
      sweepsPerRotation: report.sweepsPerRotation,
      notGenerated: report.notGenerated
        .filter((n) => sees(n.rule?.policy))
        .map((n) => ({ reason: n.reason, rule: n.rule ?? null, why: n.why })),
      notJudged: (report.notJudged ?? [])
        .filter((o) => whole || (o.namespace !== undefined && scope.includes(o.namespace)))
        .map((o) => ({ ...o, namespace: o.namespace ?? null })),
    };
  }

  /** A dual-stack cluster's cells and verified cells per family, primary first; else null. */
  private async familyCells(
    report: MatrixCoverageReport,
    scope: Scope,
    primaryVerified: number,
  ): Promise<MatrixCoverageAnswer['families']> {
    if (!report.families) return null;
    const whole = scope === undefined;
    const [primary, ...further] = report.families;
    return [
      {
        family: primary?.family ?? 4,
        cells: whole ? report.cells : null,
        cellsVerified: primaryVerified,
      },
      ...(await Promise.all(
        further.map(async (f) => {
          const n = await this.verifiedCells(scope, f.family);
          return {
            family: f.family,
            cells: whole ? f.cells : null,
            cellsVerified: whole ? Math.min(n, f.cells) : n,
          };
        }),
      )),
    ];
  }

  /**
   * Stored cases of matrix cells with a conclusive latest outcome, within the scope: to a
   * declared TCP/UDP listener, no pod to itself, not through a Service (a path is a second
   * look at a cell), over `family` (null: the pods' primary family).
   */
  private async verifiedCells(scope: Scope, family: 4 | 6 | null): Promise<number> {
    const query = this.scoped(this.casesWithOutcomes(), scope)
      .select('COUNT(*)', 'n')
      .andWhere("o.outcome IN ('pass', 'fail', 'flaky')")
      .andWhere('c.listener_known = :yes', { yes: true })
      .andWhere('c.loopback = :no', { no: false })
      .andWhere("c.protocol <> 'SCTP'")
      .andWhere('c.via IS NULL');
    const row = await (
      family === null
        ? query.andWhere('c.family IS NULL')
        : query.andWhere('c.family = :family', { family })
    ).getRawOne<{ n: string | number }>();
    return Number(row?.n ?? 0);
  }

  /**
   * The rotation cells judged in blocks over the last rotation: the tallies of the newest
   * `sweepsPerRotation` sweeps, each of which continued where the last stopped (ADR 0013).
   * None while the plan rotates nothing.
   */
  private async lastRotation(
    sweepsPerRotation: number | null,
  ): Promise<MatrixCoverageAnswer['rotation']> {
    if (sweepsPerRotation === null) return null;
    const tallies = await this.dataSource
      .getRepository(RotationTallyEntity)
      .find({ order: { generation: 'DESC' }, take: sweepsPerRotation });
    if (tallies.length === 0) return null;
    const sum = (count: (t: (typeof tallies)[number]) => number): number =>
      tallies.reduce((total, t) => total + count(t), 0);
    const times = tallies.flatMap((t) => [new Date(t.firstAt), new Date(t.lastAt)]);
    return {
      sweeps: tallies.length,
      cells: sum((t) => t.cells),
      passed: sum((t) => t.passed),
      inconclusive: sum((t) => t.inconclusive),
      mismatched: sum((t) => t.mismatched),
      since: new Date(Math.min(...times.map(Number))).toISOString(),
      until: new Date(Math.max(...times.map(Number))).toISOString(),
    };
  }

  /**
   * Namespace × namespace over the stored cases in the scope: per pair, cases by what the
   * policies expect and by their latest outcome (none yet: unverified). One GROUP BY, so a
   * page of the dashboard costs one scan of the cases, not one query per cell.
   */
  async namespaceMatrix(scope: Scope): Promise<NamespaceMatrix> {
    const rows = await this.scoped(
      this.cases().leftJoin(OutcomeEntity.options.name, 'o', 'o.case_id = c.case_id'),
      scope,
    )
      .select([
        'c.source_namespace AS source',
        'c.destination_namespace AS destination',
        'c.expected AS expected',
        'o.outcome AS outcome',
        'COUNT(*) AS n',
      ])
      .groupBy('c.source_namespace')
      .addGroupBy('c.destination_namespace')
      .addGroupBy('c.expected')
      .addGroupBy('o.outcome')
      .getRawMany<{
        source: string | null;
        destination: string | null;
        expected: string;
        outcome: string | null;
        n: string | number;
      }>();
    const pairs = new Map<
      string,
      { source: string; destination: string; total: number; counts: number[] }
    >();
    for (const row of rows) {
      if (row.source === null || row.destination === null) continue;
      const key = `${row.source}\u0000${row.destination}`;
      let pair = pairs.get(key);
      if (!pair) {
        // allow, deny, then pass, fail, flaky, inconclusive, unverified.
        pair = {
          source: row.source,
          destination: row.destination,
          total: 0,
          counts: [0, 0, 0, 0, 0, 0, 0],
        };
        pairs.set(key, pair);
      }
      const n = Number(row.n);
      const { counts } = pair;
      const expectedAt = row.expected === 'allow' ? 0 : 1;
      const outcomeAt = 2 + outcomeColumn(row.outcome);
      counts[expectedAt] = (counts[expectedAt] ?? 0) + n;
      counts[outcomeAt] = (counts[outcomeAt] ?? 0) + n;
      pair.total += n;
    }
    let kept = [...pairs.values()];
    const truncated = kept.length > MATRIX_MAX_CELLS;
    if (truncated) kept = kept.sort((a, b) => b.total - a.total).slice(0, MATRIX_MAX_CELLS);
    const namespaces = [...new Set(kept.flatMap((p) => [p.source, p.destination]))].sort();
    const index = new Map(namespaces.map((n, i) => [n, i]));
    return {
      namespaces,
      cells: kept.map(
        (p) =>
          [index.get(p.source) ?? -1, index.get(p.destination) ?? -1, ...p.counts] as [
            number,
            number,
            ...number[],
          ],
      ),
      truncated,
    };
  }

  /**
   * One namespace pair, class × class: the cases of each cell with their latest outcome.
   * Null when the scope sees no case of the pair. A class of an end outside the scope is
   * not shown: that end is one class with no labels (as tenant-view hides its pods).
   */
  async classMatrix(
    source: string,
    destination: string,
    scope: Scope,
  ): Promise<ClassMatrix | null> {
    const rows = await this.scoped(
      this.cases().leftJoin(OutcomeEntity.options.name, 'o', 'o.case_id = c.case_id'),
      scope,
    )
      .select([
        'c.case_id AS case_id',
        'c.source AS source',
        'c.destination AS destination',
        'c.port AS port',
        'c.protocol AS protocol',
        'c.expected AS expected',
        'o.outcome AS outcome',
      ])
      .andWhere('c.source_namespace = :source AND c.destination_namespace = :destination', {
        source,
        destination,
      })
      .orderBy('c.case_id', 'ASC')
      .limit(MATRIX_MAX_PAIR_CASES + 1)
      .getRawMany<Record<string, unknown>>();
    if (rows.length === 0) return null;
    const truncated = rows.length > MATRIX_MAX_PAIR_CASES;
    const hidden = {
      source: scope !== undefined && !scope.includes(source),
      destination: scope !== undefined && !scope.includes(destination),
    };
    const classes = {
      source: new Map<string, Record<string, string> | null>(),
      destination: new Map<string, Record<string, string> | null>(),
    };
    const cells = new Map<string, ClassMatrix['cells'][number]>();
    for (const row of rows.slice(0, MATRIX_MAX_PAIR_CASES)) {
      const ends = (['source', 'destination'] as const).map((end) => {
        if (hidden[end]) {
          classes[end].set('*', null);
          return '*';
        }
        const side = jsonColumn(row[end]) as { classKey: string; labels: Record<string, string> };
        const id = classId(side.classKey);
        classes[end].set(id, side.labels);
        return id;
      });
      const [from, to] = ends as [string, string];
      const key = `${from} ${to}`;
      let cell = cells.get(key);
      if (!cell) {
        cell = {
          source: from,
          destination: to,
          allow: 0,
          deny: 0,
          pass: 0,
          fail: 0,
          flaky: 0,
          inconclusive: 0,
          unverified: 0,
          cases: [],
        };
        cells.set(key, cell);
      }
      const expected = row['expected'] === 'allow' ? 'allow' : 'deny';
      const outcome = (row['outcome'] ??
        null) as ClassMatrix['cells'][number]['cases'][number]['outcome'];
      cell[expected] += 1;
      cell[outcome ?? 'unverified'] += 1;
      cell.cases.push({
        caseId: String(row['case_id']),
        port: Number(row['port']),
        protocol: String(
          row['protocol'],
        ) as ClassMatrix['cells'][number]['cases'][number]['protocol'],
        expected,
        outcome,
      });
    }
    const listed = (end: 'source' | 'destination') =>
      [...classes[end]]
        .map(([id, labels]) => ({ id, labels }))
        .sort((a, b) => labelText(a.labels).localeCompare(labelText(b.labels)));
    return {
      source,
      destination,
      sourceClasses: listed('source'),
      destinationClasses: listed('destination'),
      cells: [...cells.values()],
      truncated,
    };
  }

  /** Alerts firing now within the scope, newest first: a policy the scope may not name is null. */
  async regressions(
    scope: Scope,
    policy?: string,
  ): Promise<{ items: Regression[]; truncated: boolean }> {
    const qb = this.scoped(
      this.cases().innerJoin(AlertEntity.options.name, 'a', 'a.case_id = c.case_id'),
      scope,
    )
      .select([
        'a.case_id AS case_id',
        'a.fingerprint AS fingerprint',
        'a.group_key AS group_key',
        'a.severity AS severity',
        'a.starts_at AS starts_at',
        'c.expected AS expected',
        'c.source_namespace AS source_namespace',
        'c.destination_namespace AS destination_namespace',
        'c.port AS port',
        'c.protocol AS protocol',
      ])
      .andWhere("a.status = 'firing'");
    if (policy) qb.andWhere('a.group_key = :policy', { policy });
    const rows = await qb
      .orderBy('a.starts_at', 'DESC')
      .addOrderBy('a.case_id', 'ASC')
      .limit(REGRESSIONS_MAX + 1)
      .getRawMany<Record<string, unknown>>();
    return {
      items: rows.slice(0, REGRESSIONS_MAX).map((row) => {
        const groupKey = String(row['group_key']);
        return {
          caseId: String(row['case_id']),
          fingerprint: String(row['fingerprint']),
          policy:
            scope === undefined || scope.includes(groupKey.split('/')[0] ?? '') ? groupKey : null,
          severity: row['severity'] === 'critical' ? 'critical' : 'warning',
          startsAt: iso(row['starts_at']),
          expected: row['expected'] === 'allow' ? 'allow' : 'deny',
          sourceNamespace: String(row['source_namespace']),
          destinationNamespace: String(row['destination_namespace']),
          port: Number(row['port']),
          protocol: String(row['protocol']) as Regression['protocol'],
        };
      }),
      truncated: rows.length > REGRESSIONS_MAX,
    };
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
    const cursor = decodePageCursor(page.cursor, 'a');
    const before = cursor === undefined ? undefined : Number(cursor);
    if (before !== undefined && !Number.isSafeInteger(before))
      throw new CursorError('invalid cursor');
    const limit = clampLimit(page.limit);
    const rows = await this.attemptsQuery(caseId, before, limit + 1).getRawMany<
      Record<string, unknown>
    >();
    return pageOf(rows.map(attemptItem), limit, (i: AttemptItem) =>
      encodePageCursor('a', String(i.id)),
    );
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

/** A latest outcome's place among the matrix counts: pass, fail, flaky, inconclusive, none. */
function outcomeColumn(outcome: string | null): number {
  const at = ['pass', 'fail', 'flaky', 'inconclusive'].indexOf(outcome ?? '');
  return at === -1 ? 4 : at;
}

/** A short, stable id for a pod class: its key can be kilobytes long. */
function classId(classKey: string): string {
  return createHash('sha256').update(classKey).digest('hex').slice(0, 12);
}

function labelText(labels: Record<string, string> | null): string {
  return labels === null
    ? ''
    : Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(',');
}

function jsonColumn(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(limit)));
}

function pageOf<T>(rows: T[], limit: number, cursorOf: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? cursorOf(last) : null };
}

function iso(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  const text = String(value);
  return new Date(
    /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`,
  ).toISOString();
}

const JSON_COLUMNS = new Set([
  'source',
  'destination',
  'explanation',
  'rule',
  'evidence',
  'ingress',
  'egress',
]);
const TIME_COLUMNS = new Set(['decided_at', 'observed_at', 'changed_at']);
const BOOLEAN_COLUMNS = new Set(['listener_known']);
// PostgreSQL returns BIGINT and NUMERIC as text; these are numbers in every answer.
const NUMBER_COLUMNS = new Set(['enforcement_latency_ms', 'round', 'attempts', 'port', 'id']);

/**
 * A raw row as the API shape `schema` describes it: snake_case columns to camelCase fields,
 * JSON columns parsed, times in ISO 8601, numbers and booleans as the drivers differ on
 * them; then checked against the schema, which drops every column the shape does not name.
 */
function fromRow<T>(schema: z.ZodType<T>, row: Record<string, unknown>): T {
  const fields: Record<string, unknown> = {};
  for (const [column, raw] of Object.entries(row)) {
    const field = column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    fields[field] =
      raw === null || raw === undefined
        ? null
        : JSON_COLUMNS.has(column) && typeof raw === 'string'
          ? JSON.parse(raw)
          : TIME_COLUMNS.has(column)
            ? iso(raw)
            : BOOLEAN_COLUMNS.has(column)
              ? Boolean(raw)
              : NUMBER_COLUMNS.has(column)
                ? Number(raw)
                : raw;
  }
  const parsed = schema.safeParse(fields);
  if (parsed.success) return parsed.data;
  throw new Error(
    `a stored row does not have the API's shape: ${parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.')}: ${i.message}`)
      .join('; ')}`,
  );
}

function outcomeItem(row: Record<string, unknown>): OutcomeItem {
  return fromRow(apiOutcome, row);
}

function attemptItem(row: Record<string, unknown>): AttemptItem {
  return fromRow(apiAttempt, row);
}
