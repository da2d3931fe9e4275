import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { systemClock, type Stop } from '#lumen/contracts';
import { StreamedBatches, type MessageBus } from '#lumen/messaging';
import {
  REPORTER_DEFAULTS,
  ReporterCore,
  ResultsApi,
  startRetention,
  ResultGate,
  StoreOutageGuard,
  subscribeReporter,
} from '#lumen/reporter';
import {
  bootService,
  combineWorkers,
  connectBus,
  nestLog,
  serviceModule,
  withLeadership,
} from '#lumen/service';
import { CaseStore, isStoreUnreachable, storeLocation } from '#lumen/store';
import { caseTracer, reporterPrometheus } from '#lumen/telemetry';
import { refreshReporterGauges, startAlerting } from './alerting.js';
import { DashboardController } from './api/dashboard.controller.js';
import { RESULTS_API, ResultsController } from './api/results.controller.js';
import { reporterConfigSchema, type ReporterConfig } from './config.js';
import { standbyApi } from './standby-api.js';
import { tokensReload } from './tokens-reload.js';

export { reporterConfigSchema };

/** Judges observations against expectations, retries races, stores outcomes, alerts, serves the API. */
function reporterWorker(
  config: ReporterConfig,
  api: ResultsApi,
): Parameters<typeof serviceModule>[0] {
  const logger = new Logger('Reporter');
  const log = nestLog(logger);
  let bus: MessageBus | undefined;
  let store: CaseStore | undefined;
  let alerting: ReturnType<typeof startAlerting> | undefined;
  let stops: Stop[] = [];
  const outage = new StoreOutageGuard({
    clock: systemClock,
    log,
    unreachable: isStoreUnreachable,
  });
  return {
    notReady: () => outage.notReady() ?? (stops.length > 0 ? undefined : 'not consuming yet'),
    onApplicationBootstrap: async () => {
      store = await CaseStore.open(storeLocation(config.DATABASE_URL, config.SQLITE_PATH));
      api.attach(store.results);
      refreshReporterGauges(store);
      alerting = startAlerting(config, store, log);
      // The scheduler alone manages the streams; the chart's reporter user may not (ADR 0014).
      bus = await connectBus('reporter', config, log, { manageStreams: false, awaitStreams: true });
      const reporter = new ReporterCore(
        {
          bus,
          store,
          clock: systemClock,
          log,
          tracer: caseTracer('reporter'),
          metrics: reporterPrometheus,
          events: { afterVerdict: alerting.afterVerdict },
        },
        {
          settleWindowMs: config.SETTLE_WINDOW_MS,
          maxAttempts: config.MAX_ATTEMPTS,
          backoffMs: config.BACKOFF_MS,
          confirmAttempts: config.CONFIRM_ATTEMPTS,
        },
      );
      stops = [
        ...(await subscribeReporter(
          bus,
          reporter,
          { prefix: '', oneShot: false, bind: true },
          new ResultGate(new StreamedBatches(bus)),
          (work) => outage.run(work),
        )),
        startRetention(
          { store, clock: systemClock, log },
          {
            ...REPORTER_DEFAULTS.retention,
            attemptsPerCase: config.RETENTION_ATTEMPTS_PER_CASE,
            maxAgeMs: config.RETENTION_MAX_AGE_HOURS * 3_600_000,
            everyMs: config.RETENTION_EVERY_MS,
          },
        ),
      ];
      log.info('reporter ready', {
        receivers: config.ALERT_RECEIVERS_FILE.map((r) => `${r.name} (${r.type})`),
        apiTokens: config.API_TOKENS_FILE.tokens.size,
      });
    },
    onApplicationShutdown: async () => {
      // A message being judged finishes; unacked ones are delivered again after a restart
      // (those waiting out a store outage among them).
      outage.stop();
      for (const stop of stops) await stop();
      await alerting?.stop();
      await bus?.close();
      await store?.close();
    },
  };
}

await bootService('reporter', reporterConfigSchema, (config) => {
  const api = new ResultsApi(config.API_TOKENS_FILE.tokens);
  const worker = combineWorkers(
    // Every replica answers the API, so every replica follows a rotated tokens file.
    tokensReload(config.API_TOKENS_FILE.path, config.API_TOKENS_RELOAD_MS, api),
    withLeadership('reporter', config, reporterWorker(config, api)),
  );
  const location = storeLocation(config.DATABASE_URL, config.SQLITE_PATH);
  // Replicas beside the leader answer the API from PostgreSQL; SQLite runs one replica.
  const replica =
    config.LEADER_ELECTION && location.kind === 'postgres'
      ? combineWorkers(standbyApi(location, api), worker)
      : worker;
  return serviceModule(replica, {
    controllers: [ResultsController, DashboardController],
    providers: [{ provide: RESULTS_API, useValue: api }],
  });
});
