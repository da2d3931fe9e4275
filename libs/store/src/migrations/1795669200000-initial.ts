import {
  Table,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';

/** Column types that both SQLite and PostgreSQL accept and TypeORM maps the same way. */
// eslint-disable-next-line @typescript-eslint/explicit-module-boundary-types -- a bag of column builders
export function columns(queryRunner: QueryRunner) {
  const postgres = queryRunner.dataSource.options.type === 'postgres';
  const timestamp = postgres ? 'timestamp with time zone' : 'datetime';
  const serial = (name: string): TableColumnOptions => ({
    name,
    type: postgres ? 'integer' : 'integer',
    isPrimary: true,
    isGenerated: true,
    generationStrategy: 'increment',
  });
  const text = (name: string, length: number, nullable = false): TableColumnOptions => ({
    name,
    type: 'varchar',
    length: String(length),
    isNullable: nullable,
  });
  const integer = (name: string, nullable = false): TableColumnOptions => ({
    name,
    type: 'integer',
    isNullable: nullable,
  });
  const time = (name: string): TableColumnOptions => ({ name, type: timestamp });
  const json = (name: string, nullable = false): TableColumnOptions => ({
    name,
    type: 'text',
    isNullable: nullable,
  });
  return { serial, text, integer, time, json };
}

export class Initial1795669200000 implements MigrationInterface {
  name = 'Initial1795669200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { serial, text, integer, time, json } = columns(queryRunner);
    await queryRunner.createTable(
      new Table({
        name: 'plan_generations',
        columns: [serial('id'), time('created_at'), text('reason', 200), integer('case_count')],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'cases',
        columns: [
          { ...text('case_id', 16), isPrimary: true },
          integer('generation'),
          text('reason', 40),
          json('source'),
          json('destination'),
          integer('port'),
          text('protocol', 8),
          text('expected', 8),
          json('explanation'),
          json('rule', true),
          time('changed_at'),
          time('updated_at'),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'probe_attempts',
        columns: [
          serial('id'),
          text('case_id', 16),
          integer('round'),
          integer('attempt'),
          text('batch_id', 64),
          text('node', 253),
          time('observed_at'),
          text('reachability', 16),
          text('basis', 500),
          json('evidence', true),
          text('trace_id', 32, true),
        ],
        indices: [
          new TableIndex({
            name: 'probe_attempts_once',
            columnNames: ['case_id', 'round', 'attempt'],
            isUnique: true,
          }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'case_outcomes',
        columns: [
          { ...text('case_id', 16), isPrimary: true },
          text('outcome', 16),
          integer('round'),
          time('decided_at'),
          text('reason', 2000),
          integer('attempts'),
          integer('enforcement_latency_ms', true),
          text('trace_id', 32, true),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'case_outcome_history',
        columns: [
          serial('id'),
          text('case_id', 16),
          text('outcome', 16),
          integer('round'),
          time('decided_at'),
        ],
        indices: [
          new TableIndex({
            name: 'case_outcome_history_case',
            columnNames: ['case_id', 'decided_at'],
          }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'case_outcome_history',
      'case_outcomes',
      'probe_attempts',
      'cases',
      'plan_generations',
    ])
      await queryRunner.dropTable(table);
  }
}
