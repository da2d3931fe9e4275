import type { RetentionPolicy, RetentionReport } from '#lumen/contracts';
import type { Sql } from './sql.js';

/**
 * Deletes what the policy does not keep, in statements of at most `batchSize` rows, each
 * its own transaction, on SQLite and PostgreSQL alike (the same SQL, window functions
 * included). Safe to run while the reporter writes: a row is only ever deleted once it
 * is outside what is kept, and no statement holds its locks for long.
 */
export class Retention {
  constructor(private readonly sql: Sql) {}

  async apply(policy: RetentionPolicy, now: Date): Promise<RetentionReport> {
    const cutoff = this.sql.time(new Date(now.getTime() - policy.maxAgeMs));
    const cases = await this.staleCases(cutoff, policy.batchSize);
    const history = this.sql.table('case_outcome_history');
    const historyDeleted = await this.repeat(
      (q) => `DELETE FROM ${history} WHERE id IN (
        SELECT id FROM ${history} WHERE decided_at < ${q(cutoff)} LIMIT ${q(policy.batchSize)})`,
    );
    // Rotation tallies (ADR 0013) are outcome history too: kept for the same age.
    const tally = this.sql.table('rotation_tally');
    const tallies = await this.repeat(
      (q) => `DELETE FROM ${tally} WHERE generation IN (
        SELECT generation FROM ${tally} WHERE last_at < ${q(cutoff)} LIMIT ${q(policy.batchSize)})`,
    );
    const attempts = await this.oldAttempts(policy, cutoff);
    const alerts = await this.oldAlerts(cutoff, policy.batchSize);
    await this.sql.reclaim(['probe_attempts', 'case_outcome_history', 'case_outcomes', 'cases']);
    return { attempts, history: historyDeleted + tallies, cases, alerts };
  }

  /**
   * Alerts resolved before the cutoff, and outbox entries delivered before it: their
   * receivers have them. Firing alerts and undelivered entries stay, however old.
   */
  private async oldAlerts(cutoff: string, batchSize: number): Promise<number> {
    const alerts = this.sql.table('alerts');
    const outbox = this.sql.table('alert_outbox');
    const resolved = await this.repeat(
      (q) => `DELETE FROM ${alerts} WHERE fingerprint IN (
        SELECT fingerprint FROM ${alerts}
        WHERE status = ${q('resolved')} AND ends_at < ${q(cutoff)} LIMIT ${q(batchSize)})`,
    );
    const delivered = await this.repeat(
      (q) => `DELETE FROM ${outbox} WHERE id IN (
        SELECT id FROM ${outbox}
        WHERE delivered_at IS NOT NULL AND delivered_at < ${q(cutoff)} LIMIT ${q(batchSize)})`,
    );
    return resolved + delivered;
  }

  /**
   * Attempts beyond each case's newest `attemptsPerCase`, unless they decided a failing or
   * changed outcome within the age. Walks the cases in chunks, so that each statement
   * ranks only a chunk's attempts (through the (case, round, attempt) index).
   */
  private async oldAttempts(policy: RetentionPolicy, cutoff: string): Promise<number> {
    const attempts = this.sql.table('probe_attempts');
    const chunkSize = Math.max(1, Math.floor(policy.batchSize / policy.attemptsPerCase));
    let deleted = 0;
    let after = '';
    for (;;) {
      const chunk = await this.sql.select<{ case_id: string }>(
        (q) => `SELECT case_id FROM ${this.sql.table('cases')} WHERE case_id > ${q(after)}
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
      const stale = await this.sql.select<{ case_id: string }>(
        (q) => `SELECT case_id FROM ${this.sql.table('cases')} WHERE updated_at < ${q(cutoff)}
          LIMIT ${q(Math.max(1, Math.floor(batchSize / 10)))}`,
      );
      if (stale.length === 0) return deleted;
      const ids = stale.map((c) => c.case_id);
      await this.sql.transaction(async (execute) => {
        for (const table of ['probe_attempts', 'case_outcome_history', 'case_outcomes', 'cases'])
          await execute(
            (q) =>
              `DELETE FROM ${this.sql.table(table)} WHERE case_id IN (${ids.map(q).join(', ')})`,
          );
      });
      deleted += ids.length;
    }
  }

  /** Runs a bounded DELETE until it deletes nothing more; returns the rows deleted. */
  private async repeat(build: Parameters<Sql['execute']>[0]): Promise<number> {
    let deleted = 0;
    for (;;) {
      const affected = await this.sql.execute(build);
      deleted += affected;
      if (affected === 0) return deleted;
    }
  }
}
