import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';

/** Which pods an attempt probed from and to ("namespace/name"), for reports and alerts. */
export class AttemptPods1795710000000 implements MigrationInterface {
  name = 'AttemptPods1795710000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { text } = columns(queryRunner);
    await queryRunner.addColumns('probe_attempts', [
      new TableColumn(text('source_pod', 507, true)),
      new TableColumn(text('destination_pod', 507, true)),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('probe_attempts', 'destination_pod');
    await queryRunner.dropColumn('probe_attempts', 'source_pod');
  }
}
