import { Module, type DynamicModule } from '@nestjs/common';
import { healthModule } from './health.js';

/** What a service's one worker offers Nest: readiness, start and stop. */
export interface ServiceWorker {
  readonly notReady: () => string | undefined;
  readonly onApplicationBootstrap: () => Promise<void>;
  readonly onApplicationShutdown: () => Promise<void>;
}

@Module({})
class ServiceModule {}

/** The whole Nest side of a service: its worker as a provider, and health endpoints. */
export function serviceModule(worker: ServiceWorker): DynamicModule {
  return {
    module: ServiceModule,
    imports: [healthModule(() => [worker.notReady])],
    providers: [{ provide: 'LUMEN_SERVICE_WORKER', useValue: worker }],
  };
}
