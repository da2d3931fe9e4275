import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columns } from './1795669200000-initial.js';

/**
 * Cases probed through a Service (issue 19) keep the Service path they went by: its name,
 * ClusterIP and port, the pod-to-pod case of the same connection, and whether it is a
 * hairpin; null for the cases probed to a pod's IP, which all stored cases were until now.
 * Cases of a dual-stack pod over its second family keep that family (4 or 6); null for
 * the pods' primary one.
 */
export class ServicePaths1795760000000 implements MigrationInterface {
  name = 'ServicePaths1795760000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const { json, integer } = columns(queryRunner);
    await queryRunner.addColumn('cases', new TableColumn(json('via', true)));
    await queryRunner.addColumn('cases', new TableColumn(integer('family', true)));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('cases', 'family');
    await queryRunner.dropColumn('cases', 'via');
  }
}
