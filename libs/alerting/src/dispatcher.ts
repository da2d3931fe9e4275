import type { AlertEvent } from './alert.js';
import { redactedUrl, receiverWants, type Receiver } from './receivers.js';
import {
  alertmanagerAlerts,
  renderDelivery,
  type AlertGroup,
  type HttpRequest,
  type RenderContext,
} from './render.js';

export interface OutboxRow {
  readonly id: number;
  readonly receiver: string;
  readonly groupKey: string;
  readonly createdAt: Date;
  readonly attempts: number;
  readonly event: AlertEvent;
}

/** The outbox as the dispatcher drains it; AlertOutbox (TypeORM) is the real one. */
export interface OutboxStore {
  /** Undelivered rows whose next attempt is due, oldest first. */
  due(now: Date, limit: number): Promise<OutboxRow[]>;
  markDelivered(ids: readonly number[], at: Date): Promise<void>;
  markFailed(ids: readonly number[], error: string, nextAttemptAt: Date): Promise<void>;
  firingAlerts(): Promise<{ event: AlertEvent; namespaces: string[] }[]>;
}

export type HttpSender = (request: HttpRequest) => Promise<{ status: number }>;

export interface DispatchSettings {
  readonly receivers: readonly Receiver[];
  readonly cluster: string;
  readonly apiBaseUrl: string;
  /** A group waits this long after its first alert, so alerts of one break travel together. */
  readonly groupWaitMs: number;
  /** After a group's message, its next one waits at least this long (later alerts gather). */
  readonly groupIntervalMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Alertmanager expires alerts that are not sent again; firing ones are re-sent this often. */
  readonly alertmanagerResendMs: number;
}

export interface DeliveryReport {
  readonly receiver: string;
  readonly groupKey: string;
  readonly alerts: number;
  readonly delivered: boolean;
  readonly error?: string;
}

/** The retry delay after `attempts` failures: doubling from the base, capped. */
export function retryDelay(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 30));
}

/** Sends a request with a timeout, through Node's fetch. */
export function fetchSender(timeoutMs: number): HttpSender {
  return async (request) => {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    await response.arrayBuffer();
    return { status: response.status };
  };
}

/**
 * Drains the persistent outbox: groups due rows per receiver and policy into one request,
 * marks them delivered on a 2xx, and otherwise schedules the next try with backoff. A
 * receiver that is down loses nothing: the rows wait in the store, across restarts.
 */
export class AlertDispatcher {
  private lastAlertmanagerResend = 0;
  /** When each receiver and group last got a message (in memory: a restart sends sooner). */
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly outbox: OutboxStore,
    private readonly send: HttpSender,
    private readonly settings: DispatchSettings,
    private readonly clock: { now(): Date },
    private readonly onDelivery?: (report: DeliveryReport) => void,
  ) {}

  /** One pass over the outbox; returns what it tried. */
  async dispatchDue(): Promise<DeliveryReport[]> {
    const now = this.clock.now();
    const rows = await this.outbox.due(now, 1000);
    const groups = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const key = `${row.receiver}\n${row.groupKey}`;
      groups.set(key, [...(groups.get(key) ?? []), row]);
    }
    const reports: DeliveryReport[] = [];
    for (const group of groups.values()) {
      const first = group[0] as OutboxRow;
      const receiver = this.settings.receivers.find((r) => r.name === first.receiver);
      // A receiver removed from the configuration keeps its rows until it comes back.
      if (!receiver) continue;
      if (group.every((r) => r.attempts === 0) && this.gathering(group, now)) continue;
      reports.push(await this.deliver(receiver, group, now));
    }
    if (now.getTime() - this.lastAlertmanagerResend >= this.settings.alertmanagerResendMs) {
      this.lastAlertmanagerResend = now.getTime();
      await this.resendFiringToAlertmanager(now);
    }
    return reports;
  }

  /**
   * New alerts of a group wait for the group's wait after the first of them, and for the
   * group interval after the group's last message: a broken rule whose cases fail over
   * minutes sends a message per interval, not one per case. Retries do not wait.
   */
  private gathering(group: readonly OutboxRow[], now: Date): boolean {
    const first = group[0] as OutboxRow;
    const waited = now.getTime() - Math.min(...group.map((r) => r.createdAt.getTime()));
    const last = this.lastSent.get(`${first.receiver}\n${first.groupKey}`);
    return (
      waited < this.settings.groupWaitMs ||
      (last !== undefined && now.getTime() - last < this.settings.groupIntervalMs)
    );
  }

  private async deliver(receiver: Receiver, rows: OutboxRow[], now: Date): Promise<DeliveryReport> {
    const first = rows[0] as OutboxRow;
    const group: AlertGroup = {
      receiver: receiver.name,
      groupKey: first.groupKey,
      events: rows.map((r) => r.event),
    };
    const ids = rows.map((r) => r.id);
    const base = { receiver: receiver.name, groupKey: first.groupKey, alerts: rows.length };
    let error: string;
    try {
      const { status } = await this.send(renderDelivery(receiver, group, this.context(now)));
      if (status >= 200 && status < 300) {
        await this.outbox.markDelivered(ids, this.clock.now());
        this.lastSent.set(`${receiver.name}\n${first.groupKey}`, now.getTime());
        const report = { ...base, delivered: true };
        this.onDelivery?.(report);
        return report;
      }
      error = `HTTP ${status} from ${redactedUrl(receiver.url)}`;
    } catch (caught) {
      error = `${(caught as Error).message} (${redactedUrl(receiver.url)})`;
    }
    const attempts = Math.max(...rows.map((r) => r.attempts));
    const next = new Date(
      now.getTime() + retryDelay(attempts, this.settings.retryBaseMs, this.settings.retryMaxMs),
    );
    await this.outbox.markFailed(ids, error.slice(0, 500), next);
    const report = { ...base, delivered: false, error };
    this.onDelivery?.(report);
    return report;
  }

  /** Best effort: a failure here is retried at the next resend, the outbox is not involved. */
  private async resendFiringToAlertmanager(now: Date): Promise<void> {
    const managers = this.settings.receivers.filter((r) => r.type === 'alertmanager');
    if (managers.length === 0) return;
    const firing = await this.outbox.firingAlerts();
    for (const receiver of managers) {
      const events = firing
        .filter((f) =>
          receiverWants(receiver, { namespaces: f.namespaces, severity: f.event.severity }),
        )
        .map((f) => f.event);
      if (events.length === 0) continue;
      await this.send({
        url: `${receiver.url.replace(/\/+$/, '')}/api/v2/alerts`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alertmanagerAlerts(events, this.context(now))),
      }).catch(() => undefined);
    }
  }

  private context(now: Date): RenderContext {
    return { cluster: this.settings.cluster, now, apiBaseUrl: this.settings.apiBaseUrl };
  }
}
