import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';
import { caseIndexColumns } from '#lumen/contracts';

type CaseColumnsInput = Parameters<typeof caseIndexColumns>[0];

/**
 * What the API filters and pages on, and what alerting keeps: namespaces and the policy
 * rule of each case as plain columns (tenant scoping and filters become index lookups),
 * an index to page a case's attempts by id, the planner's policy inventory (rule
 * coverage), alert states and the alert outbox.
 */
export class ResultsAndAlerts1795720000000 implements MigrationInterface {
  name = 'ResultsAndAlerts1795720000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { serial, text, integer, time, json } = columns(queryRunner);
    await queryRunner.addColumns('cases', [
      new TableColumn(text('source_namespace', 63, true)),
      new TableColumn(text('destination_namespace', 63, true)),
      new TableColumn(text('policy', 507, true)),
      new TableColumn(text('rule_direction', 8, true)),
      new TableColumn(integer('rule_index', true)),
    ]);
    await backfillCaseColumns(queryRunner);
    for (const [table, columnNames] of [
      ['cases', ['source_namespace']],
      ['cases', ['destination_namespace']],
      ['cases', ['policy', 'rule_direction', 'rule_index']],
      ['probe_attempts', ['case_id', 'id']],
      ['case_outcomes', ['outcome']],
      ['case_outcomes', ['decided_at']],
    ] as const)
      await queryRunner.createIndex(
        table,
        new TableIndex({
          name: `${table}_by_${columnNames.join('_')}`,
          columnNames: [...columnNames],
        }),
      );
    await queryRunner.createTable(
      new Table({
        name: 'policy_rules',
        columns: [
          { ...text('policy', 507), isPrimary: true },
          integer('generation'),
          json('ingress'),
          json('egress'),
        ],
        indices: [
          new TableIndex({ name: 'policy_rules_by_generation', columnNames: ['generation'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'alerts',
        columns: [
          { ...text('fingerprint', 16), isPrimary: true },
          text('case_id', 16),
          text('group_key', 507),
          text('status', 16),
          text('severity', 16),
          time('starts_at'),
          { ...time('ends_at'), isNullable: true },
          text('namespaces', 200),
          json('event'),
        ],
        indices: [new TableIndex({ name: 'alerts_by_status', columnNames: ['status'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'alert_outbox',
        columns: [
          serial('id'),
          text('receiver', 63),
          text('fingerprint', 16),
          text('group_key', 507),
          text('status', 16),
          json('event'),
          time('created_at'),
          time('next_attempt_at'),
          integer('attempts'),
          { ...time('delivered_at'), isNullable: true },
          text('last_error', 500, true),
        ],
        indices: [
          new TableIndex({
            name: 'alert_outbox_due',
            columnNames: ['delivered_at', 'next_attempt_at'],
          }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('alert_outbox');
    await queryRunner.dropTable('alerts');
    await queryRunner.dropTable('policy_rules');
    for (const [table, name] of [
      ['case_outcomes', 'case_outcomes_by_decided_at'],
      ['case_outcomes', 'case_outcomes_by_outcome'],
      ['probe_attempts', 'probe_attempts_by_case_id_id'],
      ['cases', 'cases_by_policy_rule_direction_rule_index'],
      ['cases', 'cases_by_destination_namespace'],
      ['cases', 'cases_by_source_namespace'],
    ] as const)
      await queryRunner.dropIndex(table, name);
    for (const column of [
      'rule_index',
      'rule_direction',
      'policy',
      'destination_namespace',
      'source_namespace',
    ])
      await queryRunner.dropColumn('cases', column);
  }
}

/** Cases stored before this migration get their columns from their JSON. */
async function backfillCaseColumns(queryRunner: QueryRunner): Promise<void> {
  const options = queryRunner.dataSource.options;
  const schema = 'schema' in options ? options.schema : undefined;
  const cases = schema ? `"${schema}"."cases"` : 'cases';
  const rows = (await queryRunner.query(
    `SELECT case_id, source, destination, rule, explanation FROM ${cases}`,
  )) as {
    case_id: string;
    source: string;
    destination: string;
    rule: string | null;
    explanation: string;
  }[];
  const postgres = queryRunner.dataSource.options.type === 'postgres';
  const p = (n: number): string => (postgres ? `$${n}` : '?');
  for (const row of rows) {
    // Rows written before this migration, by the TestCase contract of the time.
    const c = caseIndexColumns({
      source: JSON.parse(row.source) as CaseColumnsInput['source'],
      destination: JSON.parse(row.destination) as CaseColumnsInput['destination'],
      rule: row.rule ? (JSON.parse(row.rule) as CaseColumnsInput['rule']) : null,
      explanation: JSON.parse(row.explanation) as CaseColumnsInput['explanation'],
    });
    await queryRunner.query(
      `UPDATE ${cases} SET source_namespace = ${p(1)}, destination_namespace = ${p(2)}, policy = ${p(3)}, rule_direction = ${p(4)}, rule_index = ${p(5)} WHERE case_id = ${p(6)}`,
      [
        c.sourceNamespace,
        c.destinationNamespace,
        c.policy,
        c.ruleDirection,
        c.ruleIndex,
        row.case_id,
      ],
    );
  }
}
