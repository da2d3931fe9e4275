import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import type { NatsConnection } from 'nats';
import { PROBER_IDENTITY_DEFAULTS, ProberAttestor } from '#lumen/access';
import { durableServiceConsumers, systemClock, type Stop } from '#lumen/contracts';
import { KubeProberIdentityPorts, loadKubeConfig } from '#lumen/kube';
import {
  AuthCalloutResponder,
  ManagedProberRegistry,
  MessageBus,
  ProberRegistry,
  connectNats,
  proberAuthorizer,
} from '#lumen/messaging';
import {
  PROBER_CONSUMER_SETTINGS,
  PROBER_WATCH_INTERVAL_MS,
  SCHEDULER_DEFAULTS,
  SchedulerCore,
  subscribeScheduler,
} from '#lumen/scheduler';
import {
  caseTracer,
  probersLive,
  refreshBeforeScrape,
  schedulerPrometheus,
  streamBytes,
  streamLimitBytes,
  streamMessages,
} from '#lumen/telemetry';
import {
  bootService,
  combineWorkers,
  commonConfig,
  connectBus,
  flag,
  integer,
  nestLog,
  serviceModule,
  leaderElectionConfig,
  withLeadership,
  type ServiceWorker,
} from '#lumen/service';

/** `key=value,key=value`: the labels every prober pod carries. */
const labelSet = z
  .string()
  .min(1)
  .transform((text, ctx) =>
    Object.fromEntries(
      text.split(',').map((pair) => {
        const [key = '', value = ''] = pair.split('=').map((part) => part.trim());
        if (!key || !value) ctx.addIssue({ code: 'custom', message: `"${pair}" is not key=value` });
        return [key, value];
      }),
    ),
  );

/**
 * NATS auth callout for the probers' per-node credentials (ADR 0016). Every replica answers,
 * leader or not, so that probers can connect while leadership changes hands.
 */
const proberCalloutConfig = {
  PROBER_AUTH_CALLOUT: flag(),
  NATS_AUTH_CALLOUT_USER: z.string().min(1).default('lumen-auth'),
  NATS_AUTH_CALLOUT_PASSWORD: z.string().min(1).optional(),
  /** File holding the issuer account's seed (SA…); the server trusts its public key. */
  NATS_AUTH_CALLOUT_SEED_FILE: z.string().min(1).optional(),
  /** The probers' ServiceAccount, in POD_NAMESPACE. */
  PROBER_SERVICE_ACCOUNT: z.string().min(1).optional(),
  PROBER_POD_LABELS: labelSet.optional(),
  PROBER_TOKEN_AUDIENCE: z.string().min(1).default(PROBER_IDENTITY_DEFAULTS.audience),
  PROBER_IDENTITY_MAX_SECONDS: integer(60, 86_400, PROBER_IDENTITY_DEFAULTS.maxLifetimeSeconds),
};

/** The scheduler's environment, validated once at boot. */
export const schedulerConfigSchema = z
  .object({
    ...leaderElectionConfig,
    ...commonConfig,
    ...proberCalloutConfig,
    /** A prober silent this long counts as gone; also how long to wait for probers after a start. */
    HEARTBEAT_TTL_MS: integer(1500, 300_000, SCHEDULER_DEFAULTS.startupGraceMs),
    MAX_TARGETS_PER_BATCH: integer(1, 1000, SCHEDULER_DEFAULTS.maxTargetsPerBatch),
    RATE_PER_NODE: integer(1, 10_000, SCHEDULER_DEFAULTS.ratePerNode),
    BURST_PER_NODE: integer(1, 10_000, SCHEDULER_DEFAULTS.burstPerNode),
    GATHER_MS: integer(0, 10_000, SCHEDULER_DEFAULTS.gatherMs),
    MAX_BATCHES_IN_FLIGHT_PER_NODE: integer(1, 1000, SCHEDULER_DEFAULTS.maxBatchesInFlightPerNode),
    REDISPATCH_AFTER_MS: integer(5000, 3_600_000, SCHEDULER_DEFAULTS.redispatchAfterMs),
    HTTP_PORT: integer(1, 65535, 8082),
  })
  .superRefine((config, ctx) => {
    if (!config.PROBER_AUTH_CALLOUT) return;
    for (const key of [
      'NATS_AUTH_CALLOUT_PASSWORD',
      'NATS_AUTH_CALLOUT_SEED_FILE',
      'PROBER_SERVICE_ACCOUNT',
      'PROBER_POD_LABELS',
      'POD_NAMESPACE',
    ] as const)
      if (config[key] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'is required with PROBER_AUTH_CALLOUT=true',
        });
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
      // Every service's durable consumers are made here; the planner and reporter bind.
      await bus.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
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
      refreshBeforeScrape(async () => {
        scheduler.reportQueues();
        // Zero is worth a page: no node is verified (LumenProbersMissing).
        probersLive.set((await registry.live()).size);
      });
      // The streams are the scheduler's to manage: it says how full each is (ADR 0019).
      const streams = bus;
      refreshBeforeScrape(async () => {
        for (const usage of await streams.streamUsage()) {
          streamBytes.set({ stream: usage.stream }, usage.bytes);
          streamMessages.set({ stream: usage.stream }, usage.messages);
          streamLimitBytes.set({ stream: usage.stream }, usage.limitBytes);
        }
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

/** Answers the server's auth callout for probers, when PROBER_AUTH_CALLOUT is on. */
function proberCalloutWorker(config: SchedulerConfig): ServiceWorker {
  if (!config.PROBER_AUTH_CALLOUT)
    return {
      notReady: () => undefined,
      onApplicationBootstrap: () => Promise.resolve(),
      onApplicationShutdown: () => Promise.resolve(),
    };
  const log = nestLog(new Logger('ProberAuth'));
  let connection: NatsConnection | undefined;
  let responder: AuthCalloutResponder | undefined;
  return {
    notReady: () => (responder ? undefined : 'not answering the auth callout yet'),
    onApplicationBootstrap: async () => {
      const attestor = new ProberAttestor(
        {
          namespace: config.POD_NAMESPACE ?? '',
          serviceAccount: config.PROBER_SERVICE_ACCOUNT ?? '',
          podLabels: config.PROBER_POD_LABELS ?? {},
          audience: config.PROBER_TOKEN_AUDIENCE,
          maxLifetimeSeconds: config.PROBER_IDENTITY_MAX_SECONDS,
        },
        new KubeProberIdentityPorts(loadKubeConfig(config.KUBECONFIG)),
      );
      connection = await connectNats({
        url: config.NATS_URL,
        name: 'lumen-scheduler-auth',
        user: config.NATS_AUTH_CALLOUT_USER,
        pass: config.NATS_AUTH_CALLOUT_PASSWORD ?? '',
        ...(config.NATS_CA_FILE ? { caFile: config.NATS_CA_FILE } : {}),
      });
      responder = AuthCalloutResponder.start(connection, {
        issuerSeed: readFileSync(config.NATS_AUTH_CALLOUT_SEED_FILE ?? '', 'utf8'),
        authorize: proberAuthorizer((token) => attestor.attest(token)),
        log,
      });
      await connection.flush();
      log.info(
        `answering the NATS auth callout for probers (${config.PROBER_SERVICE_ACCOUNT ?? ''})`,
      );
    },
    onApplicationShutdown: async () => {
      responder?.stop();
      await connection?.close();
    },
  };
}

await bootService('scheduler', schedulerConfigSchema, (config) =>
  serviceModule(
    combineWorkers(
      proberCalloutWorker(config),
      withLeadership('scheduler', config, schedulerWorker(config)),
    ),
  ),
);
