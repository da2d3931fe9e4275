import 'reflect-metadata';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import { refreshBeforeScrape } from '#lumen/metrics';
import { MessageBus, ProberRegistry } from '#lumen/messaging';
import { SchedulerCore, consumeForScheduler, systemClock, type Stop } from '#lumen/pipeline';
import {
  bootService,
  commonConfig,
  connectBus,
  integer,
  nestLog,
  serviceModule,
  leaderElectionConfig,
  withLeadership,
} from '#lumen/runtime';

/** The scheduler's environment, validated once at boot. */
export const schedulerConfigSchema = z.object({
  ...leaderElectionConfig,
  ...commonConfig,
  HEARTBEAT_TTL_MS: integer(1500, 300_000, 15_000),
  MAX_TARGETS_PER_BATCH: integer(1, 1000, 200),
  RATE_PER_NODE: integer(1, 10_000, 20),
  BURST_PER_NODE: integer(1, 10_000, 40),
  GATHER_MS: integer(0, 10_000, 200),
  REDISPATCH_AFTER_MS: integer(5000, 3_600_000, 120_000),
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
      const registry = await ProberRegistry.open(bus, config.HEARTBEAT_TTL_MS);
      const scheduler = new SchedulerCore(
        bus,
        registry,
        {
          maxTargetsPerBatch: config.MAX_TARGETS_PER_BATCH,
          ratePerNode: config.RATE_PER_NODE,
          burstPerNode: config.BURST_PER_NODE,
          gatherMs: config.GATHER_MS,
          redispatchAfterMs: config.REDISPATCH_AFTER_MS,
          startupGraceMs: config.HEARTBEAT_TTL_MS,
          maxDispatches: 3,
        },
        systemClock,
        log,
      );
      core = scheduler;
      refreshBeforeScrape(() => {
        scheduler.reportQueues();
      });
      stops = await consumeForScheduler(bus, scheduler, { prefix: '', oneShot: false });
      scheduler.watchProbers(1000);
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
