import { Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import { healthModule } from './health.js';
import { MetricsModule } from './metrics.js';

/** What a service's one worker offers Nest: readiness, start and stop. */
export interface ServiceWorker {
  readonly notReady: () => string | undefined;
  readonly onApplicationBootstrap: () => Promise<void>;
  readonly onApplicationShutdown: () => Promise<void>;
}

/** Several workers as one: each starts and stops; the service is ready when all are. */
export function combineWorkers(...workers: readonly ServiceWorker[]): ServiceWorker {
  return {
    notReady: () => workers.map((w) => w.notReady()).find((reason) => reason !== undefined),
    onApplicationBootstrap: async () => {
      for (const worker of workers) await worker.onApplicationBootstrap();
    },
    onApplicationShutdown: async () => {
      for (const worker of [...workers].reverse()) await worker.onApplicationShutdown();
    },
  };
}

@Module({})
class ServiceModule {}

/**
 * The whole Nest side of a service: its worker as a provider, health endpoints, `/metrics`,
 * and any controllers of its own (the reporter's API) with what they inject.
 */
export function serviceModule(
  worker: ServiceWorker,
  extra: { controllers?: Type[]; providers?: Provider[] } = {},
): DynamicModule {
  return {
    module: ServiceModule,
    imports: [healthModule(() => [worker.notReady]), MetricsModule],
    controllers: extra.controllers ?? [],
    providers: [{ provide: 'LUMEN_SERVICE_WORKER', useValue: worker }, ...(extra.providers ?? [])],
  };
}
