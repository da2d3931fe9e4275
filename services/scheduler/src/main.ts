import 'reflect-metadata';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import { systemClock, type Stop } from '#lumen/contracts';
import { ManagedProberRegistry, MessageBus, ProberRegistry } from '#lumen/messaging';
import {
  PROBER_CONSUMER_SETTINGS,
  PROBER_WATCH_INTERVAL_MS,
  SCHEDULER_DEFAULTS,
  SchedulerCore,
  subscribeScheduler,
} from '#lumen/scheduler';
import { caseTracer, refreshBeforeScrape, schedulerPrometheus } from '#lumen/telemetry';
import {
  bootService,
  commonConfig,
  connectBus,
  integer,
  nestLog,
  serviceModule,
  leaderElectionConfig,
  withLeadership,
} from '#lumen/service';

/** The scheduler's environment, validated once at boot. */
export const schedulerConfigSchema = z.object({
  ...leaderElectionConfig,
  ...commonConfig,
  /** A prober silent this long counts as gone; also how long to wait for probers after a start. */
  HEARTBEAT_TTL_MS: integer(1500, 300_000, SCHEDULER_DEFAULTS.startupGraceMs),
  MAX_TARGETS_PER_BATCH: integer(1, 1000, SCHEDULER_DEFAULTS.maxTargetsPerBatch),
  RATE_PER_NODE: integer(1, 10_000, SCHEDULER_DEFAULTS.ratePerNode),
  BURST_PER_NODE: integer(1, 10_000, SCHEDULER_DEFAULTS.burstPerNode),
  GATHER_MS: integer(0, 10_000, SCHEDULER_DEFAULTS.gatherMs),
  MAX_BATCHES_IN_FLIGHT_PER_NODE: integer(1, 1000, SCHEDULER_DEFAULTS.maxBatchesInFlightPerNode),
  REDISPATCH_AFTER_MS: integer(5000, 3_600_000, SCHEDULER_DEFAULTS.redispatchAfterMs),
  HTTP_PORT: integer(1, 65535, 8082),
});
type SchedulerConfig = z.infer<typeof schedulerConfigSchema>;

/** Turns cases and re-probes into batches for live probers; re-dispatches what silent probers held. */
function schedulerWorker(config: SchedulerConfig): Parameters<typeof serviceModule>[0] {
  const logger = new Logger('Scheduler');
  const log = nestLog(logger);
  let bus: MessageBus | undefined;
  let core: SchedulerCore | undefined;
  let stops: Stop[] = [];
  return {
    notReady: () => (stops.length > 0 ? undefined : 'not consuming yet'),
    onApplicationBootstrap: async () => {
      bus = await connectBus('scheduler', config, log);
      // The scheduler makes each node's prober consumer; probers only bind (ADR 0014).
      const registry = new ManagedProberRegistry(
        await ProberRegistry.open(bus, config.HEARTBEAT_TTL_MS),
        bus,
        PROBER_CONSUMER_SETTINGS,
      );
      const scheduler = new SchedulerCore(
        {
          bus,
          probers: registry,
          clock: systemClock,
          log,
          tracer: caseTracer('scheduler'),
          metrics: schedulerPrometheus,
        },
        {
          ...SCHEDULER_DEFAULTS,
          maxTargetsPerBatch: config.MAX_TARGETS_PER_BATCH,
          ratePerNode: config.RATE_PER_NODE,
          burstPerNode: config.BURST_PER_NODE,
          gatherMs: config.GATHER_MS,
          maxBatchesInFlightPerNode: config.MAX_BATCHES_IN_FLIGHT_PER_NODE,
          redispatchAfterMs: config.REDISPATCH_AFTER_MS,
          startupGraceMs: config.HEARTBEAT_TTL_MS,
        },
      );
      core = scheduler;
      refreshBeforeScrape(() => {
        scheduler.reportQueues();
      });
      stops = await subscribeScheduler(bus, scheduler, { prefix: '', oneShot: false });
      scheduler.watchProbers(PROBER_WATCH_INTERVAL_MS);
    },
    onApplicationShutdown: async () => {
      // Cases still gathering are handed back (not acked): JetStream delivers them again.
      core?.stop();
      for (const stop of stops) await stop();
      await bus?.close();
    },
  };
}

await bootService('scheduler', schedulerConfigSchema, (config) =>
  serviceModule(withLeadership('scheduler', config, schedulerWorker(config))),
);
