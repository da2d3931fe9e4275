import { In, LessThan, type DataSource, type EntitySchema, type FindOptionsWhere } from 'typeorm';
import {
  AttemptEntity,
  CaseEntity,
  OutcomeEntity,
  OutcomeHistoryEntity,
  PlanGenerationEntity,
  PolicyRulesEntity,
  RotationTallyEntity,
  type RotationTallyRow,
  type AttemptRow,
  type CaseRow,
  type OutcomeRow,
} from './entities.js';
import { createDataSource, type StoreLocation } from './data-source.js';
import {
  attemptRecord,
  caseIndexColumns,
  caseRecord,
  outcomeRecord,
  type AttemptRecord,
  type CaseRecord,
  type MatrixCoverageReport,
  type NewAttempt,
  type Outcome,
  type OutcomeRecord,
  type RetentionPolicy,
  type RetentionReport,
  type RotationCounts,
} from '#lumen/contracts';
import { z } from 'zod';
import { AlertOutbox } from './alert-outbox.js';
import { ResultsQuery } from './results-query.js';
import { Retention } from './retention.js';
import { Sql } from './sql.js';

/** Whether an outcome was stored, and the outcome it replaced. */
export interface OutcomeApplied {
  readonly applied: boolean;
  readonly previous: Outcome | undefined;
}

/** A stored row that does not read back as its record: the message names the row and field. */
export class StoredRowError extends Error {
  override readonly name = 'StoredRowError';
}

/** Reads a row as its typed record, or fails naming what in the row is wrong. */
function record<T>(schema: z.ZodType<T>, what: string, row: object): T {
  const parsed = schema.safeParse(row);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(row)'}: ${i.message}`)
    .join('; ');
  throw new StoredRowError(`${what}: the stored row is not a valid record: ${issues}`);
}

// A case row also holds the index columns derived from its JSON; reading drops them.
const caseRowRecord = z.object(caseRecord.shape);

const readCase = (row: CaseRow): CaseRecord => record(caseRowRecord, `case ${row.caseId}`, row);

// An attempt row also holds its retention mark; reading drops it.
const attemptRowRecord = z.object(attemptRecord.shape);

const readAttempt = (row: AttemptRow): AttemptRecord =>
  record(attemptRowRecord, `attempt ${row.id} of case ${row.caseId}`, row);

const readOutcome = (row: OutcomeRow): OutcomeRecord =>
  record(outcomeRecord, `outcome of case ${row.caseId}`, row);

/**
 * The reporter's store, behind a small port: plan generations, cases, probe attempts
 * (idempotent by case, round and attempt), the current outcome per case and its history.
 */
export class CaseStore {
  /** Alert states and the outbox, in the same database. */
  readonly alerts: AlertOutbox;
  /** The API's reads: filtered, scoped and paged. */
  readonly results: ResultsQuery;

  private readonly sql: Sql;

  private constructor(private readonly dataSource: DataSource) {
    this.sql = new Sql(dataSource);
    this.alerts = new AlertOutbox(dataSource, this.sql);
    this.results = new ResultsQuery(dataSource);
  }

  /** Opens the store and brings its schema up to date through the migrations. */
  static async open(location: StoreLocation): Promise<CaseStore> {
    const dataSource = createDataSource(location);
    if (location.kind === 'postgres' && location.schema) {
      const bootstrap = createDataSource({ kind: 'postgres', url: location.url });
      await bootstrap.initialize();
      await bootstrap.query(`CREATE SCHEMA IF NOT EXISTS "${location.schema.replace(/"/g, '')}"`);
      await bootstrap.destroy();
    }
    await dataSource.initialize();
    await dataSource.runMigrations({ transaction: 'each' });
    return new CaseStore(dataSource);
  }

  /**
   * Opens the store for reading only, running no migration: a standby reporter's API reads
   * what the leader writes (PostgreSQL). Until the leader has migrated the schema, it is
   * `migrationsPending`, and its reads would fail.
   */
  static async openForReading(location: StoreLocation): Promise<CaseStore> {
    const dataSource = createDataSource(location);
    await dataSource.initialize();
    return new CaseStore(dataSource);
  }

  /** Whether migrations this version knows have not been applied to the database yet. */
  async migrationsPending(): Promise<boolean> {
    return this.dataSource.showMigrations();
  }

  async close(): Promise<void> {
    await this.dataSource.destroy();
  }

  async appliedMigrations(): Promise<string[]> {
    const schema = 'schema' in this.dataSource.options ? this.dataSource.options.schema : undefined;
    const table = schema ? `"${schema}"."migrations"` : '"migrations"';
    const rows = await this.dataSource.query<{ name: string }[]>(
      `SELECT name FROM ${table} ORDER BY id`,
    );
    return rows.map((r) => r.name);
  }

  async recordGeneration(reason: string, caseCount: number, at: Date): Promise<number> {
    const saved = await this.sql.write(() =>
      this.dataSource
        .getRepository(PlanGenerationEntity)
        .save({ reason: reason.slice(0, 200), caseCount, createdAt: at }),
    );
    return saved.id;
  }

  async upsertCases(cases: readonly CaseRecord[]): Promise<void> {
    if (cases.length === 0) return;
    // Chunks keep each statement within SQLite's limits on a large plan.
    for (let i = 0; i < cases.length; i += 100)
      await this.sql.write(() =>
        this.dataSource.getRepository(CaseEntity).upsert(
          cases.slice(i, i + 100).map((c) => ({ ...c, ...caseIndexColumns(c) })),
          ['caseId'],
        ),
      );
  }

  async cases(): Promise<CaseRecord[]> {
    const rows = await this.dataSource.getRepository(CaseEntity).find({ order: { caseId: 'ASC' } });
    return rows.map(readCase);
  }

  async getCases(caseIds: readonly string[]): Promise<CaseRecord[]> {
    return (await this.rowsOfCases(CaseEntity, caseIds)).map(readCase);
  }

  /** A table's rows of these cases, read in chunks within SQLite's limit on parameters. */
  private async rowsOfCases<Row extends { caseId: string }>(
    entity: EntitySchema<Row>,
    caseIds: readonly string[],
  ): Promise<Row[]> {
    const rows: Row[] = [];
    for (let i = 0; i < caseIds.length; i += 500)
      rows.push(
        ...(await this.dataSource
          .getRepository(entity)
          .findBy({ caseId: In(caseIds.slice(i, i + 500)) } as FindOptionsWhere<Row>)),
      );
    return rows;
  }

  async getCase(caseId: string): Promise<CaseRecord | null> {
    const row = await this.dataSource.getRepository(CaseEntity).findOneBy({ caseId });
    return row ? readCase(row) : null;
  }

  /** Stores an attempt once: a redelivered result with the same case, round and attempt changes nothing. */
  async recordAttempt(attempt: NewAttempt): Promise<boolean> {
    try {
      await this.sql.write(() =>
        this.dataSource
          .getRepository(AttemptEntity)
          .insert({ ...attempt, basis: attempt.basis.slice(0, 500) }),
      );
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /**
   * Stores a result's attempts in one statement per hundred; one stored before (a
   * redelivered result) is left as it is.
   */
  async recordAttempts(attempts: readonly NewAttempt[]): Promise<void> {
    for (let i = 0; i < attempts.length; i += 100) {
      const rows = attempts.slice(i, i + 100).map((a) => ({ ...a, basis: a.basis.slice(0, 500) }));
      await this.sql.write(() =>
        this.dataSource
          .getRepository(AttemptEntity)
          .createQueryBuilder()
          .insert()
          .values(rows)
          .orIgnore()
          .execute(),
      );
    }
  }

  /** Every stored attempt of these cases (retention keeps a few per case). */
  async attemptsOf(caseIds: readonly string[]): Promise<AttemptRecord[]> {
    return (await this.rowsOfCases(AttemptEntity, caseIds)).map(readAttempt);
  }

  async outcomesOf(caseIds: readonly string[]): Promise<OutcomeRecord[]> {
    return (await this.rowsOfCases(OutcomeEntity, caseIds)).map(readOutcome);
  }

  async attempts(caseId: string, round: number): Promise<AttemptRecord[]> {
    const rows = await this.dataSource
      .getRepository(AttemptEntity)
      .find({ where: { caseId, round }, order: { attempt: 'ASC' } });
    return rows.map(readAttempt);
  }

  /**
   * Sets a case's outcome for a round, once: a round that already has an outcome (or an
   * older round, once a newer one has) changes nothing. The history keeps every change.
   */
  async setOutcome(
    outcome: OutcomeRecord,
  ): Promise<{ readonly applied: boolean; readonly previous: Outcome | undefined }> {
    const result = (await this.setOutcomes([outcome])).get(outcome.caseId);
    return result ?? { applied: false, previous: undefined };
  }

  /** setOutcome for several cases (one each), in one transaction. */
  setOutcomes(outcomes: readonly OutcomeRecord[]): Promise<Map<string, OutcomeApplied>> {
    return this.sql.write(() =>
      this.dataSource.transaction(async (manager) => {
        const applied = new Map<string, OutcomeApplied>();
        const previous = new Map(
          (
            await manager
              .getRepository(OutcomeEntity)
              .findBy({ caseId: In(outcomes.map((o) => o.caseId)) })
          ).map((row) => [row.caseId, row] as const),
        );
        const changed: OutcomeRecord[] = [];
        const saved: OutcomeRecord[] = [];
        for (const outcome of outcomes) {
          const before = previous.get(outcome.caseId);
          if (before && before.round >= outcome.round) {
            applied.set(outcome.caseId, { applied: false, previous: before.outcome });
            continue;
          }
          applied.set(outcome.caseId, { applied: true, previous: before?.outcome });
          saved.push({ ...outcome, reason: outcome.reason.slice(0, 2000) });
          if (before?.outcome !== outcome.outcome) changed.push(outcome);
          // The attempts behind a failure or a change are evidence: kept for the history's age.
          if (before?.outcome !== outcome.outcome || outcome.outcome === 'fail')
            await manager
              .getRepository(AttemptEntity)
              .update({ caseId: outcome.caseId, round: outcome.round }, { retained: true });
        }
        for (let i = 0; i < saved.length; i += 100)
          await manager.getRepository(OutcomeEntity).upsert(saved.slice(i, i + 100), ['caseId']);
        // History records changes: a sweep that confirms the same outcome adds no row.
        if (changed.length > 0)
          await manager.getRepository(OutcomeHistoryEntity).insert(
            changed.map((o) => ({
              caseId: o.caseId,
              outcome: o.outcome,
              round: o.round,
              decidedAt: o.decidedAt,
            })),
          );
        return applied;
      }),
    );
  }

  /** Replaces the policy inventory with a newer generation's part; older parts change nothing. */
  async recordPolicyInventory(
    generation: number,
    policies: readonly { policy: string; ingress: number[]; egress: number[] }[],
  ): Promise<void> {
    const repository = this.dataSource.getRepository(PolicyRulesEntity);
    await this.sql.write(() =>
      repository.upsert(
        policies.map((p) => ({ ...p, generation })),
        ['policy'],
      ),
    );
  }

  /** Keeps the planner's newest view of the matrix; an older plan's changes nothing. */
  async recordMatrixCoverage(report: MatrixCoverageReport, at: Date): Promise<void> {
    // One statement: two plans' reports arriving at once neither collide nor go backwards.
    const table = this.sql.table('matrix_coverage');
    await this.sql.execute(
      (q) => `INSERT INTO ${table} (id, generation, report, received_at)
        VALUES (${q('current')}, ${q(report.generation)}, ${q(JSON.stringify(report))}, ${q(this.sql.time(at))})
        ON CONFLICT (id) DO UPDATE SET generation = excluded.generation,
          report = excluded.report, received_at = excluded.received_at
        WHERE matrix_coverage.generation <= excluded.generation`,
    );
  }

  /** Adds rotation cells judged in blocks to their generation's tally (one statement). */
  async addRotationTally(generation: number, counts: RotationCounts, at: Date): Promise<void> {
    const table = this.sql.table('rotation_tally');
    const time = this.sql.time(at);
    await this.sql.execute(
      (
        q,
      ) => `INSERT INTO ${table} (generation, cells, passed, inconclusive, mismatched, first_at, last_at)
        VALUES (${q(generation)}, ${q(counts.cells)}, ${q(counts.passed)}, ${q(counts.inconclusive)},
          ${q(counts.mismatched)}, ${q(time)}, ${q(time)})
        ON CONFLICT (generation) DO UPDATE SET cells = rotation_tally.cells + excluded.cells,
          passed = rotation_tally.passed + excluded.passed,
          inconclusive = rotation_tally.inconclusive + excluded.inconclusive,
          mismatched = rotation_tally.mismatched + excluded.mismatched,
          last_at = excluded.last_at`,
    );
  }

  /** The newest rotation tallies, newest first. */
  async rotationTallies(limit: number): Promise<RotationTallyRow[]> {
    return this.dataSource
      .getRepository(RotationTallyEntity)
      .find({ order: { generation: 'DESC' }, take: limit });
  }

  /** Forgets policies the newest complete inventory no longer lists. */
  async prunePolicyInventory(generation: number): Promise<void> {
    await this.sql.write(() =>
      this.dataSource.getRepository(PolicyRulesEntity).delete({ generation: LessThan(generation) }),
    );
  }

  /** Deletes what the retention policy does not keep, in short statements. */
  async applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionReport> {
    return new Retention(this.sql).apply(policy, now);
  }

  /** Rows per table, for the benchmarks and the retention tests. */
  async rowCounts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const [table, entity] of [
      ['cases', CaseEntity],
      ['probe_attempts', AttemptEntity],
      ['case_outcomes', OutcomeEntity],
      ['case_outcome_history', OutcomeHistoryEntity],
    ] as const)
      counts[table] = await this.dataSource.getRepository(entity).count();
    return counts;
  }

  async outcome(caseId: string): Promise<OutcomeRecord | null> {
    const row = await this.dataSource.getRepository(OutcomeEntity).findOneBy({ caseId });
    return row ? readOutcome(row) : null;
  }

  async outcomes(): Promise<OutcomeRecord[]> {
    const rows = await this.dataSource
      .getRepository(OutcomeEntity)
      .find({ order: { caseId: 'ASC' } });
    return rows.map(readOutcome);
  }

  async history(caseId: string): Promise<{ outcome: Outcome; round: number; decidedAt: Date }[]> {
    return this.dataSource.getRepository(OutcomeHistoryEntity).find({
      where: { caseId },
      order: { id: 'ASC' },
      select: { outcome: true, round: true, decidedAt: true },
    });
  }
}

/** A duplicate key, as SQLite and PostgreSQL report it. */
function isUniqueViolation(error: unknown): boolean {
  const driver = (error as { driverError?: { code?: string } }).driverError;
  return driver?.code === 'SQLITE_CONSTRAINT_UNIQUE' || driver?.code === '23505';
}
