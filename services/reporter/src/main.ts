import 'reflect-metadata';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import { MessageBus } from '#lumen/messaging';
import { ReporterCore, consumeForReporter, systemClock, type Stop } from '#lumen/pipeline';
import {
  bootService,
  commonConfig,
  connectBus,
  integer,
  nestLog,
  serviceModule,
} from '#lumen/runtime';
import { CaseStore, storeLocation } from '#lumen/store';

/** The reporter's environment, validated once at boot. */
export const reporterConfigSchema = z.object({
  ...commonConfig,
  /** postgres:// for PostgreSQL; without it, SQLite at SQLITE_PATH. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  SQLITE_PATH: z.string().min(1).default('/var/lib/lumen/lumen.db'),
  SETTLE_WINDOW_MS: integer(0, 3_600_000, 10_000),
  MAX_ATTEMPTS: integer(1, 20, 3),
  BACKOFF_MS: integer(0, 600_000, 1000),
  CONFIRM_ATTEMPTS: integer(1, 20, 1),
  HTTP_PORT: integer(1, 65535, 8084),
});
type ReporterConfig = z.infer<typeof reporterConfigSchema>;

/** Judges observations against expectations, retries races, stores outcomes. */
function reporterWorker(config: ReporterConfig): Parameters<typeof serviceModule>[0] {
  const logger = new Logger('Reporter');
  const log = nestLog(logger);
  let bus: MessageBus | undefined;
  let store: CaseStore | undefined;
  let stops: Stop[] = [];
  return {
    notReady: () => (stops.length > 0 ? undefined : 'not consuming yet'),
    onApplicationBootstrap: async () => {
      store = await CaseStore.open(storeLocation(config.DATABASE_URL, config.SQLITE_PATH));
      bus = await connectBus('reporter', config, log);
      const reporter = new ReporterCore(
        bus,
        store,
        {
          settleWindowMs: config.SETTLE_WINDOW_MS,
          maxAttempts: config.MAX_ATTEMPTS,
          backoffMs: config.BACKOFF_MS,
          confirmAttempts: config.CONFIRM_ATTEMPTS,
        },
        systemClock,
        log,
      );
      stops = await consumeForReporter(bus, reporter, { prefix: '', oneShot: false });
    },
    onApplicationShutdown: async () => {
      // A message being judged finishes; unacked ones are delivered again after a restart.
      for (const stop of stops) await stop();
      await bus?.close();
      await store?.close();
    },
  };
}

await bootService('reporter', reporterConfigSchema, (config) =>
  serviceModule(reporterWorker(config)),
);
