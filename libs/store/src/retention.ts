import type { DataSource } from 'typeorm';
import type { RetentionPolicy, RetentionReport } from '#lumen/contracts';

type Placeholder = (value: unknown) => string;

/**
 * Deletes what the policy does not keep, in statements of at most `batchSize` rows, each
 * its own transaction, on SQLite and PostgreSQL alike (the same SQL, window functions
 * included). Safe to run while the reporter writes: a row is only ever deleted once it
 * is outside what is kept, and no statement holds its locks for long.
 */
export class Retention {
  private readonly postgres: boolean;
  private readonly prefix: string;

  constructor(private readonly dataSource: DataSource) {
    this.postgres = dataSource.options.type === 'postgres';
    const schema = 'schema' in dataSource.options ? dataSource.options.schema : undefined;
    this.prefix = schema ? `"${schema}".` : '';
  }

  async apply(policy: RetentionPolicy, now: Date): Promise<RetentionReport> {
    const cutoff = this.time(new Date(now.getTime() - policy.maxAgeMs));
    const cases = await this.staleCases(cutoff, policy.batchSize);
    const history = this.table('case_outcome_history');
    const historyDeleted = await this.repeat(
      (q) => `DELETE FROM ${history} WHERE id IN (
        SELECT id FROM ${history} WHERE decided_at < ${q(cutoff)} LIMIT ${q(policy.batchSize)})`,
    );
    const attempts = await this.oldAttempts(policy, cutoff);
    return { attempts, history: historyDeleted, cases };
  }

  /**
   * Attempts beyond each case's newest `attemptsPerCase`, unless they decided a failing or
   * changed outcome within the age. Walks the cases in chunks, so that each statement
   * ranks only a chunk's attempts (through the (case, round, attempt) index).
   */
  private async oldAttempts(policy: RetentionPolicy, cutoff: string): Promise<number> {
    const attempts = this.table('probe_attempts');
    const chunkSize = Math.max(1, Math.floor(policy.batchSize / policy.attemptsPerCase));
    let deleted = 0;
    let after = '';
    for (;;) {
      const chunk = await this.select<{ case_id: string }>(
        (q) => `SELECT case_id FROM ${this.table('cases')} WHERE case_id > ${q(after)}
          ORDER BY case_id LIMIT ${q(chunkSize)}`,
      );
      const last = chunk.at(-1);
      if (!last) return deleted;
      after = last.case_id;
      const ids = chunk.map((c) => c.case_id);
      deleted += await this.repeat(
        (q) => `DELETE FROM ${attempts} WHERE id IN (
          SELECT id FROM (
            SELECT id, retained, observed_at,
              ROW_NUMBER() OVER (PARTITION BY case_id ORDER BY id DESC) AS newer
            FROM ${attempts} WHERE case_id IN (${ids.map(q).join(', ')})
          ) ranked
          WHERE newer > ${q(policy.attemptsPerCase)}
            AND (retained = FALSE OR observed_at < ${q(cutoff)})
          LIMIT ${q(policy.batchSize)})`,
      );
    }
  }

  /** Cases no plan has sent within the age (their classes are gone), with all they hold. */
  private async staleCases(cutoff: string, batchSize: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const stale = await this.select<{ case_id: string }>(
        (q) => `SELECT case_id FROM ${this.table('cases')} WHERE updated_at < ${q(cutoff)}
          LIMIT ${q(Math.max(1, Math.floor(batchSize / 10)))}`,
      );
      if (stale.length === 0) return deleted;
      const ids = stale.map((c) => c.case_id);
      await this.dataSource.transaction(async (manager) => {
        for (const table of ['probe_attempts', 'case_outcome_history', 'case_outcomes', 'cases']) {
          const { sql, values } = this.statement(
            (q) => `DELETE FROM ${this.table(table)} WHERE case_id IN (${ids.map(q).join(', ')})`,
          );
          await manager.query(sql, values);
        }
      });
      deleted += ids.length;
    }
  }

  /** Runs a bounded DELETE until it deletes nothing more; returns the rows deleted. */
  private async repeat(build: (q: Placeholder) => string): Promise<number> {
    const { sql, values } = this.statement(build);
    let deleted = 0;
    for (;;) {
      const runner = this.dataSource.createQueryRunner();
      try {
        const result = (await runner.query(sql, values, true)) as { affected?: number };
        const affected = result.affected ?? 0;
        deleted += affected;
        if (affected === 0) return deleted;
      } finally {
        await runner.release();
      }
    }
  }

  private async select<T>(build: (q: Placeholder) => string): Promise<T[]> {
    const { sql, values } = this.statement(build);
    return this.dataSource.query<T[]>(sql, values);
  }

  /**
   * SQL with its values bound in the order they appear: `$1, $2…` for PostgreSQL, `?` for
   * SQLite (whose anonymous parameters bind by position in the text).
   */
  private statement(build: (q: Placeholder) => string): { sql: string; values: unknown[] } {
    const values: unknown[] = [];
    const sql = build((value) => {
      values.push(value);
      return this.postgres ? `$${values.length}` : '?';
    });
    return { sql, values };
  }

  private table(name: string): string {
    return `${this.prefix}"${name}"`;
  }

  /** A time as the driver stores it: PostgreSQL takes ISO; TypeORM's SQLite text is UTC without T or Z. */
  private time(date: Date): string {
    return this.postgres ? date.toISOString() : date.toISOString().replace('T', ' ').slice(0, 23);
  }
}
