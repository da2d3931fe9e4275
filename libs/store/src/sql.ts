import type { DataSource } from 'typeorm';

export type Placeholder = (value: unknown) => string;

/**
 * What differs between the two databases for hand-written SQL: placeholders, schema-
 * qualified table names, how a time is bound, and whether writes must take turns.
 */
export class Sql {
  readonly postgres: boolean;
  private readonly prefix: string;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataSource: DataSource) {
    this.postgres = dataSource.options.type === 'postgres';
    const schema = 'schema' in dataSource.options ? dataSource.options.schema : undefined;
    this.prefix = schema ? `"${schema}".` : '';
  }

  /**
   * SQL with its values bound in the order they appear: `$1, $2…` for PostgreSQL, `?` for
   * SQLite (whose anonymous parameters bind by position in the text).
   */
  statement(build: (q: Placeholder) => string): { sql: string; values: unknown[] } {
    const values: unknown[] = [];
    const sql = build((value) => {
      values.push(value);
      return this.postgres ? `$${values.length}` : '?';
    });
    return { sql, values };
  }

  async select<T>(build: (q: Placeholder) => string): Promise<T[]> {
    const { sql, values } = this.statement(build);
    return this.dataSource.query<T[]>(sql, values);
  }

  /** Runs a write statement; returns the rows it changed. */
  async execute(build: (q: Placeholder) => string): Promise<number> {
    const { sql, values } = this.statement(build);
    return this.write(async () => {
      const runner = this.dataSource.createQueryRunner();
      try {
        const result = (await runner.query(sql, values, true)) as { affected?: number };
        return result.affected ?? 0;
      } finally {
        await runner.release();
      }
    });
  }

  /** Statements in one transaction, in turn with the other writes. */
  async transaction(
    work: (execute: (build: (q: Placeholder) => string) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    await this.write(() =>
      this.dataSource.transaction(async (manager) => {
        await work(async (build) => {
          const { sql, values } = this.statement(build);
          await manager.query(sql, values);
        });
      }),
    );
  }

  /**
   * Makes the space of deleted and updated rows reusable. PostgreSQL keeps dead rows until
   * a VACUUM; autovacuum comes late on tables that churn every sweep (every case and
   * outcome row is rewritten, and retention deletes a sweep's worth of attempts), and the
   * files grew by 20 MB per sweep of the 20,000-pod plan with the row counts flat. A plain
   * VACUUM blocks no reads or writes. SQLite reuses freed pages by itself.
   */
  async reclaim(tables: readonly string[]): Promise<void> {
    if (!this.postgres) return;
    for (const table of tables)
      await this.dataSource.query(`VACUUM (ANALYZE) ${this.table(table)}`);
  }

  table(name: string): string {
    return `${this.prefix}"${name}"`;
  }

  /** A time as the driver stores it: PostgreSQL takes ISO; TypeORM's SQLite text is UTC without T or Z. */
  time(date: Date): string {
    return this.postgres ? date.toISOString() : date.toISOString().replace('T', ' ').slice(0, 23);
  }

  /**
   * Runs a write, or a transaction, in turn with every other write of this store. TypeORM
   * gives SQLite one connection for all callers: two transactions begun at once fail
   * ("cannot start a transaction within a transaction"), and a write made while another
   * caller's transaction is open joins it. PostgreSQL's pool needs no turns.
   */
  write<T>(work: () => Promise<T>): Promise<T> {
    if (this.postgres) return work();
    const result = this.turn.then(work);
    this.turn = result.catch(() => undefined);
    return result;
  }
}
