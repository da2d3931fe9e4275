import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';

/**
 * Rotation cells judged in blocks (ADR 0013) leave no attempt: a row per plan generation
 * counts them (cells, passed, inconclusive, mismatched), added to as results arrive.
 */
export class RotationTally1795750000000 implements MigrationInterface {
  name = 'RotationTally1795750000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { integer, time } = columns(queryRunner);
    await queryRunner.createTable(
      new Table({
        name: 'rotation_tally',
        columns: [
          { ...integer('generation'), isPrimary: true },
          integer('cells'),
          integer('passed'),
          integer('inconclusive'),
          integer('mismatched'),
          time('first_at'),
          time('last_at'),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('rotation_tally');
  }
}
