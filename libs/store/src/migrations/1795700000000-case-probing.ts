import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';

/**
 * What the reporter needs to ask for a re-probe and to report a case without the planner:
 * whether the destination is known to answer, whether the case is a self-probe, the
 * case's trace; and, per outcome, what was observed.
 */
export class CaseProbing1795700000000 implements MigrationInterface {
  name = 'CaseProbing1795700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { text } = columns(queryRunner);
    const flag = (name: string): TableColumn =>
      new TableColumn({ name, type: 'boolean', isNullable: false, default: false });
    await queryRunner.addColumns('cases', [
      flag('listener_known'),
      flag('loopback'),
      new TableColumn(text('traceparent', 55, true)),
    ]);
    await queryRunner.addColumn('case_outcomes', new TableColumn(text('observed', 16, true)));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('case_outcomes', 'observed');
    for (const column of ['traceparent', 'loopback', 'listener_known'])
      await queryRunner.dropColumn('cases', column);
  }
}
