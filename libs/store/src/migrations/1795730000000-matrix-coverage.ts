import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';

/**
 * The planner's newest view of the class matrix (`lumen.v1.coverage`): one row, replaced
 * by each newer plan, which the API joins with the stored outcomes for matrix coverage.
 */
export class MatrixCoverage1795730000000 implements MigrationInterface {
  name = 'MatrixCoverage1795730000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { text, integer, json, time } = columns(queryRunner);
    await queryRunner.createTable(
      new Table({
        name: 'matrix_coverage',
        columns: [
          { ...text('id', 16), isPrimary: true },
          integer('generation'),
          json('report'),
          time('received_at'),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('matrix_coverage');
  }
}
