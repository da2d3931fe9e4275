import { TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Bounded storage: an attempt that decided a failing or changed outcome is marked to be
 * kept for the history's age (the others only while they are among a case's newest), and
 * the age-based deletes find their rows by time through an index.
 */
export class Retention1795740000000 implements MigrationInterface {
  name = 'Retention1795740000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn(
      'probe_attempts',
      new TableColumn({ name: 'retained', type: 'boolean', isNullable: false, default: false }),
    );
    await queryRunner.createIndex(
      'case_outcome_history',
      new TableIndex({ name: 'case_outcome_history_by_time', columnNames: ['decided_at'] }),
    );
    await queryRunner.createIndex(
      'cases',
      new TableIndex({ name: 'cases_by_update', columnNames: ['updated_at'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('cases', 'cases_by_update');
    await queryRunner.dropIndex('case_outcome_history', 'case_outcome_history_by_time');
    await queryRunner.dropColumn('probe_attempts', 'retained');
  }
}
