import { In, IsNull, LessThanOrEqual, type DataSource } from 'typeorm';
import type {
  AlertEvent,
  AlertState,
  AlertStatus,
  AlertStore,
  OutboxRow,
  OutboxStore,
} from '#lumen/alerting';
import { AlertEntity, AlertOutboxEntity } from './entities.js';
import type { Sql } from './sql.js';

/** Alert states and the delivery outbox (the reporter's side of alerting). */
export class AlertOutbox implements AlertStore, OutboxStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sql: Sql,
  ) {}

  async alertState(fingerprint: string): Promise<AlertState | null> {
    const row = await this.dataSource.getRepository(AlertEntity).findOneBy({ fingerprint });
    return row ? { status: row.status as AlertStatus, startsAt: row.startsAt } : null;
  }

  async recordAlert(
    event: AlertEvent,
    namespaces: readonly string[],
    receivers: readonly string[],
    at: Date,
  ): Promise<void> {
    await this.sql.write(() => this.record(event, namespaces, receivers, at));
  }

  private async record(
    event: AlertEvent,
    namespaces: readonly string[],
    receivers: readonly string[],
    at: Date,
  ): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.getRepository(AlertEntity).save({
        fingerprint: event.fingerprint,
        caseId: event.content.caseId,
        groupKey: event.groupKey.slice(0, 507),
        status: event.status,
        severity: event.severity,
        startsAt: new Date(event.startsAt),
        endsAt: event.endsAt ? new Date(event.endsAt) : null,
        namespaces: `,${namespaces.join(',')},`.slice(0, 200),
        event,
      });
      if (receivers.length > 0)
        await manager.getRepository(AlertOutboxEntity).insert(
          receivers.map((receiver) => ({
            receiver,
            fingerprint: event.fingerprint,
            groupKey: event.groupKey.slice(0, 507),
            status: event.status,
            event,
            createdAt: at,
            nextAttemptAt: at,
            attempts: 0,
            deliveredAt: null,
            lastError: null,
          })),
        );
    });
  }

  async due(now: Date, limit: number): Promise<OutboxRow[]> {
    const rows = await this.dataSource.getRepository(AlertOutboxEntity).find({
      where: { deliveredAt: IsNull(), nextAttemptAt: LessThanOrEqual(now) },
      order: { id: 'ASC' },
      take: limit,
    });
    return rows.map((r) => ({
      id: r.id,
      receiver: r.receiver,
      groupKey: r.groupKey,
      createdAt: r.createdAt,
      attempts: r.attempts,
      event: r.event as AlertEvent,
    }));
  }

  async markDelivered(ids: readonly number[], at: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.sql.write(() =>
      this.dataSource
        .getRepository(AlertOutboxEntity)
        .update({ id: In([...ids]) }, { deliveredAt: at, lastError: null }),
    );
  }

  async markFailed(ids: readonly number[], error: string, nextAttemptAt: Date): Promise<void> {
    if (ids.length === 0) return;
    await this.sql.write(() =>
      this.dataSource
        .getRepository(AlertOutboxEntity)
        .createQueryBuilder()
        .update()
        .set({ lastError: error.slice(0, 500), nextAttemptAt, attempts: () => 'attempts + 1' })
        .where({ id: In([...ids]) })
        .execute(),
    );
  }

  async firingAlerts(): Promise<{ event: AlertEvent; namespaces: string[] }[]> {
    const rows = await this.dataSource
      .getRepository(AlertEntity)
      .find({ where: { status: 'firing' }, order: { fingerprint: 'ASC' } });
    return rows.map((r) => ({
      event: r.event as AlertEvent,
      namespaces: r.namespaces.split(',').filter(Boolean),
    }));
  }

  /** Outbox rows per receiver: delivered, pending, and pending that failed at least once. */
  async outboxCounts(): Promise<{ receiver: string; pending: number; failing: number }[]> {
    const rows = await this.dataSource
      .getRepository(AlertOutboxEntity)
      .createQueryBuilder('o')
      .select('o.receiver', 'receiver')
      .addSelect('COUNT(*)', 'pending')
      .addSelect('SUM(CASE WHEN o.attempts > 0 THEN 1 ELSE 0 END)', 'failing')
      .where('o.delivered_at IS NULL')
      .groupBy('o.receiver')
      .getRawMany<{ receiver: string; pending: string | number; failing: string | number }>();
    return rows.map((r) => ({
      receiver: r.receiver,
      pending: Number(r.pending),
      failing: Number(r.failing),
    }));
  }

  /** Every outbox row of a receiver, oldest first: for operations and tests. */
  async deliveries(receiver: string): Promise<
    {
      id: number;
      fingerprint: string;
      status: string;
      attempts: number;
      deliveredAt: Date | null;
      lastError: string | null;
    }[]
  > {
    return this.dataSource.getRepository(AlertOutboxEntity).find({
      where: { receiver },
      order: { id: 'ASC' },
      select: {
        id: true,
        fingerprint: true,
        status: true,
        attempts: true,
        deliveredAt: true,
        lastError: true,
      },
    });
  }
}
