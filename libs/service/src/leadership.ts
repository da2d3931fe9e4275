import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { z } from 'zod';
import { LeaseElector, loadKubeConfig } from '#lumen/kube';
import { flag, integer } from './common-config.js';
import { nestLog } from './nest-log.js';
import type { ServiceWorker } from './service-module.js';

/** Leader election, for the services that must run one active replica. */
export const leaderElectionConfig = {
  /** true: replicas wait on a Lease and only its holder works (the chart sets it). */
  LEADER_ELECTION: flag(),
  LEASE_NAME: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Kubernetes object name')
    .optional(),
  LEASE_DURATION_SECONDS: integer(5, 300, 15),
  /** This replica's identity in the Lease (downward API metadata.name). */
  POD_NAME: z.string().min(1).max(253).optional(),
  /** Where the Lease lives (downward API metadata.namespace). */
  POD_NAMESPACE: z.string().min(1).max(63).optional(),
  KUBECONFIG: z.string().min(1).optional(),
};

export interface LeadershipConfig {
  readonly LEADER_ELECTION: boolean;
  readonly LEASE_NAME?: string | undefined;
  readonly LEASE_DURATION_SECONDS: number;
  readonly POD_NAME?: string | undefined;
  readonly POD_NAMESPACE?: string | undefined;
  readonly KUBECONFIG?: string | undefined;
}

/**
 * A worker that starts only while its replica holds the service's Lease. A standby is
 * healthy and ready (so rolling updates proceed) but idle; a leader that cannot renew
 * exits, and Kubernetes restarts it as a standby while another takes over.
 */
export function withLeadership(
  service: string,
  config: LeadershipConfig,
  worker: ServiceWorker,
): ServiceWorker {
  const log = nestLog(new Logger('Leadership'));
  if (!config.LEADER_ELECTION) return worker;
  const identity = config.POD_NAME ?? hostname();
  const lease = {
    namespace: config.POD_NAMESPACE ?? 'default',
    name: config.LEASE_NAME ?? `lumen-${service}`,
  };
  const elector = new LeaseElector(loadKubeConfig(config.KUBECONFIG), {
    ...lease,
    identity,
    leaseDurationSeconds: config.LEASE_DURATION_SECONDS,
  });
  let leading = false;
  let starting: Promise<void> | undefined;
  return {
    notReady: () => (leading ? worker.notReady() : undefined),
    onApplicationBootstrap: () => {
      // In the background: health endpoints answer while a standby waits.
      starting = elector
        .acquire()
        .then(async () => {
          leading = true;
          log.info('leading', { ...lease, identity });
          elector.keepRenewing((why) => {
            log.warn('lost leadership; exiting so that a standby takes over', { ...lease, why });
            process.exit(1);
          });
          await worker.onApplicationBootstrap();
        })
        .catch((error: unknown) => {
          if (!leading) return;
          log.warn('failed to start after winning the lease', { error: String(error) });
          process.exit(1);
        });
      log.info('waiting for leadership', { ...lease, identity });
      return Promise.resolve();
    },
    onApplicationShutdown: async () => {
      // The work stops before the lease is handed over, so two leaders never overlap.
      if (leading) await worker.onApplicationShutdown();
      await elector.release().catch(() => undefined);
      await starting;
    },
  };
}
