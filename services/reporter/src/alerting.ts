import { AlertDispatcher, AlertingCore, fetchSender } from '#lumen/alerting';
import { systemClock, type Log } from '#lumen/contracts';
import {
  alertDeliveries,
  alertOutboxPending,
  casesByOutcome,
  matrixCellsVerified,
  refreshBeforeScrape,
  regressions,
  regressionsFiring,
  ruleCoverage,
} from '#lumen/telemetry';
import type { CaseStore } from '#lumen/store';
import { publicUrl, type ReporterConfig } from './config.js';

/** The reporter's alerting: verdict → alert state → outbox, and a loop draining the outbox. */
export function startAlerting(
  config: ReporterConfig,
  store: CaseStore,
  log: Log,
): { afterVerdict: (caseId: string) => Promise<unknown>; stop: () => Promise<void> } {
  const receivers = config.ALERT_RECEIVERS_FILE;
  const apiBaseUrl = publicUrl(config);
  const core = new AlertingCore(
    store,
    store.alerts,
    { receivers, apiBaseUrl },
    systemClock,
    (e) => {
      if (e.status === 'firing') regressions.inc({ severity: e.severity });
      log.warn(e.status === 'firing' ? 'regression: alert firing' : 'alert resolved', {
        caseId: e.content.caseId,
        fingerprint: e.fingerprint,
        policy: e.groupKey,
        severity: e.severity,
        traceId: e.content.traceId,
      });
    },
  );
  const dispatcher = new AlertDispatcher(
    store.alerts,
    fetchSender(config.ALERT_HTTP_TIMEOUT_MS),
    {
      receivers,
      cluster: config.CLUSTER_NAME,
      apiBaseUrl,
      groupWaitMs: config.ALERT_GROUP_WAIT_MS,
      groupIntervalMs: config.ALERT_GROUP_INTERVAL_MS,
      retryBaseMs: config.ALERT_RETRY_BASE_MS,
      retryMaxMs: config.ALERT_RETRY_MAX_MS,
      alertmanagerResendMs: config.ALERTMANAGER_RESEND_MS,
    },
    systemClock,
    (report) => {
      alertDeliveries.inc({
        receiver: report.receiver,
        result: report.delivered ? 'delivered' : 'failed',
      });
      if (report.delivered) log.info('alerts delivered', { ...report });
      else log.warn('alert delivery failed; will retry', { ...report });
    },
  );
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  // The loop polls the outbox, and a new alert wakes it once its group wait is over, so
  // the first message of a break leaves without waiting for the next poll.
  let wake: () => void = () => undefined;
  const loop = async (): Promise<void> => {
    while (!stopped) {
      await dispatcher.dispatchDue().catch((error: unknown) => {
        log.warn('alert dispatch failed', { error: String(error) });
      });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, config.ALERT_DISPATCH_INTERVAL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  if (receivers.length > 0) running = loop();
  return {
    afterVerdict: async (caseId) => {
      const event = await core.afterVerdict(caseId);
      if (event && receivers.length > 0)
        setTimeout(() => {
          wake();
        }, config.ALERT_GROUP_WAIT_MS + 5).unref();
      return event;
    },
    stop: async () => {
      stopped = true;
      wake();
      await running;
    },
  };
}

/** The gauges read from the store at scrape time. */
export function refreshReporterGauges(store: CaseStore): void {
  refreshBeforeScrape(async () => {
    const summary = await store.results.summary(undefined);
    for (const [outcome, n] of Object.entries(summary.byOutcome))
      casesByOutcome.set({ outcome }, n);
    casesByOutcome.set({ outcome: 'undecided' }, summary.undecided);
    regressionsFiring.set(summary.firingAlerts);
    ruleCoverage.reset();
    for (const p of await store.results.coverage(undefined)) {
      const [namespace = '', policy = ''] = p.policy.split('/');
      ruleCoverage.set({ policy_namespace: namespace, policy }, p.coverage);
    }
    matrixCellsVerified.set((await store.results.matrix(undefined))?.cellsVerified ?? 0);
    alertOutboxPending.reset();
    for (const c of await store.alerts.outboxCounts())
      alertOutboxPending.set({ receiver: c.receiver }, c.pending);
  });
}
