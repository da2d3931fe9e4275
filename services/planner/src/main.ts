import 'reflect-metadata';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import { ClusterWatcher, loadKubeConfig } from '#lumen/kube';
import { MessageBus } from '#lumen/messaging';
import { PlannerCore, systemClock } from '#lumen/pipeline';
import { bootService, commonConfig, integer, nestLog, serviceModule } from '#lumen/runtime';

/** The planner's environment, validated once at boot. */
export const plannerConfigSchema = z.object({
  ...commonConfig,
  /** A kubeconfig file (the lab's); without one, the in-cluster service account. */
  KUBECONFIG: z.string().min(1).optional(),
  SAMPLE_BUDGET: integer(0, 1_000_000, 0),
  SWEEP_INTERVAL_MS: integer(10_000, 86_400_000, 300_000),
  DEBOUNCE_MS: integer(0, 60_000, 1000),
  MAX_CANDIDATES: integer(1, 20, 10),
  HTTP_PORT: integer(1, 65535, 8081),
});
type PlannerConfig = z.infer<typeof plannerConfigSchema>;

/** Watches the cluster and publishes the cases a change affects, plus a periodic sweep. */
function plannerWorker(config: PlannerConfig): Parameters<typeof serviceModule>[0] {
  const logger = new Logger('Planner');
  const log = nestLog(logger);
  let bus: MessageBus | undefined;
  let watcher: ClusterWatcher | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let planned = false;
  let stopping = false;
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = (work: () => Promise<unknown>): void => {
    queue = queue.then(work).catch((error: unknown) => {
      logger.error('planning failed; the next change or sweep tries again', {
        error: String(error),
      });
    });
  };
  return {
    notReady: () => (planned ? undefined : 'no plan published yet (waiting for the cluster)'),
    onApplicationBootstrap: async () => {
      bus = await MessageBus.connect({
        url: config.NATS_URL,
        service: 'planner',
        ...(config.NATS_USER ? { user: config.NATS_USER, pass: config.NATS_PASSWORD ?? '' } : {}),
        log,
      });
      const core = new PlannerCore(
        bus,
        { sampleBudget: config.SAMPLE_BUDGET, maxCandidates: config.MAX_CANDIDATES },
        systemClock,
        log,
      );
      watcher = new ClusterWatcher(loadKubeConfig(config.KUBECONFIG), {
        debounceMs: config.DEBOUNCE_MS,
        onSnapshot: (snapshot) => {
          logger.log('cluster changed', { changes: snapshot.changes.length });
          enqueue(async () => {
            await core.update(snapshot);
            planned = true;
          });
        },
        onError: (kind, error) => {
          if (stopping) return;
          logger.warn('watch failed; relisting', { kind, error: String(error) });
        },
      });
      await watcher.start();
      sweep = setInterval(() => {
        enqueue(() => core.sweep());
      }, config.SWEEP_INTERVAL_MS);
    },
    onApplicationShutdown: async () => {
      stopping = true;
      clearInterval(sweep);
      await watcher?.stop();
      await queue;
      await bus?.close();
    },
  };
}

await bootService('planner', plannerConfigSchema, (config) => serviceModule(plannerWorker(config)));
