import 'reflect-metadata';
import { z } from 'zod';
import { Logger } from '@nestjs/common';
import { ClusterWatcher, SyntheticPods, loadKubeConfig, type ClusterSnapshot } from '#lumen/kube';
import { systemClock } from '#lumen/contracts';
import { MessageBus } from '#lumen/messaging';
import { PLANNER_DEFAULTS, PlanRunner, PlannerCore, subscribePlanner } from '#lumen/planner';
import { caseTracer, plannerPrometheus } from '#lumen/telemetry';
import {
  bootService,
  commonConfig,
  connectBus,
  integer,
  labelKey,
  nestLog,
  serviceModule,
  leaderElectionConfig,
  withLeadership,
} from '#lumen/service';

/** The planner's environment, validated once at boot. */
export const plannerConfigSchema = z.object({
  ...leaderElectionConfig,
  ...commonConfig,
  /** A kubeconfig file (the lab's); without one, the in-cluster service account. */
  KUBECONFIG: z.string().min(1).optional(),
  /** budget: obligations, then the least recently probed matrix cells; full; obligations. */
  COVERAGE: z.enum(['budget', 'full', 'obligations']).default(PLANNER_DEFAULTS.coverage),
  /** Probes per sweep; 0 derives it from the nodes and SWEEP_INTERVAL_MS. */
  PROBE_BUDGET: integer(0, 100_000_000, PLANNER_DEFAULTS.probeBudget),
  SWEEP_INTERVAL_MS: integer(10_000, 86_400_000, PLANNER_DEFAULTS.sweepIntervalMs),
  DEBOUNCE_MS: integer(0, 60_000, PLANNER_DEFAULTS.debounceMs),
  /** How often policy CRDs missing at start are looked for again; 0: only at start. */
  CRD_DISCOVERY_MS: integer(0, 3_600_000, PLANNER_DEFAULTS.crdDiscoveryMs),
  MAX_CANDIDATES: integer(1, 20, PLANNER_DEFAULTS.maxCandidates),
  /** Rotation cells per plan above which they travel as cell blocks (ADR 0013). */
  ROTATION_BLOCKS_ABOVE: integer(0, 1_000_000_000, PLANNER_DEFAULTS.rotationBlocksAbove),
  HTTP_PORT: integer(1, 65535, 8081),
  /** Opt-in: source pods for near misses no real pod covers, in SYNTHETIC_NAMESPACE. */
  SYNTHETIC_SOURCES: z.enum(['true', 'false']).default('false'),
  /** Namespaces labelled `<OPT_OUT_LABEL>=true` are left out (their pods neither probed nor probing). */
  OPT_OUT_LABEL: labelKey(PLANNER_DEFAULTS.optOutLabel),
  SYNTHETIC_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name')
    .default(PLANNER_DEFAULTS.syntheticNamespace),
  SYNTHETIC_IMAGE: z.string().min(1).default(PLANNER_DEFAULTS.syntheticImage),
  /** Synthetic source pods at most; near misses beyond stay "not generated". */
  SYNTHETIC_MAX_PODS: integer(1, 1000, PLANNER_DEFAULTS.maxSyntheticSources),
});
type PlannerConfig = z.infer<typeof plannerConfigSchema>;

/** Watches the cluster and publishes the cases a change affects, plus a periodic sweep. */
function plannerWorker(config: PlannerConfig): Parameters<typeof serviceModule>[0] {
  const logger = new Logger('Planner');
  const log = nestLog(logger);
  let bus: MessageBus | undefined;
  let watcher: ClusterWatcher | undefined;
  let core: PlannerCore | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let planned = false;
  let stopping = false;
  let runner: PlanRunner<ClusterSnapshot> | undefined;
  let stops: (() => Promise<void>)[] = [];
  return {
    notReady: () => {
      if (!planned) return 'no plan published yet (waiting for the cluster)';
      const stale = watcher?.staleSince;
      return stale
        ? `the cluster view is stale: a watch has failed since ${stale.toISOString()} (the Kubernetes API unreachable or refusing); planning waits for it`
        : undefined;
    },
    onApplicationBootstrap: async () => {
      // The scheduler alone manages the streams; the chart's planner user may not (ADR 0014).
      bus = await connectBus('planner', config, log, { manageStreams: false, awaitStreams: true });
      const kubeConfig = loadKubeConfig(config.KUBECONFIG);
      const synthetic = config.SYNTHETIC_SOURCES === 'true';
      core = new PlannerCore(
        {
          bus,
          clock: systemClock,
          log,
          tracer: caseTracer('planner'),
          metrics: plannerPrometheus,
          ...(synthetic
            ? { synthetic: new SyntheticPods(kubeConfig, config.SYNTHETIC_IMAGE) }
            : {}),
        },
        {
          coverage: config.COVERAGE,
          probeBudget: config.PROBE_BUDGET,
          sweepIntervalMs: config.SWEEP_INTERVAL_MS,
          maxCandidates: config.MAX_CANDIDATES,
          optOutLabel: config.OPT_OUT_LABEL,
          rotationBlocksAbove: config.ROTATION_BLOCKS_ABOVE,
          ...(synthetic
            ? {
                syntheticNamespace: config.SYNTHETIC_NAMESPACE,
                maxSyntheticSources: config.SYNTHETIC_MAX_PODS,
              }
            : {}),
        },
      );
      const planner = core;
      stops = await subscribePlanner(bus, planner, { prefix: '', oneShot: false, bind: true });
      const plans = new PlanRunner<ClusterSnapshot>(
        {
          update: async (view) => {
            await planner.update(view);
            planned = true;
          },
          sweep: () => planner.sweep(),
        },
        (error) => {
          logger.error('planning failed; the next change or sweep tries again', {
            error: String(error),
          });
        },
      );
      runner = plans;
      watcher = new ClusterWatcher(kubeConfig, {
        debounceMs: config.DEBOUNCE_MS,
        discoveryMs: config.CRD_DISCOVERY_MS,
        onDiscovered: (kind, group) => {
          logger.log('a policy CRD was installed; its objects are now watched', { kind, group });
        },
        onSnapshot: (snapshot) => {
          logger.log('cluster changed', { changes: snapshot.changes.length });
          plans.change(snapshot);
        },
        onError: (kind, error, during) => {
          if (stopping) return;
          logger.warn(
            during === 'discovery'
              ? 'looking for a policy CRD failed; the next round looks again'
              : 'watch failed; sweeps and changes wait until it lists again',
            { kind, error: String(error) },
          );
        },
        onUninstalled: (kind) => {
          logger.warn('a policy CRD was removed; its objects are gone from the view', { kind });
        },
        onRecovered: (kind, outageMs) => {
          logger.log('watch listing again; its part of the view is fresh', { kind, outageMs });
        },
      });
      const watching = watcher;
      await watching.start();
      sweep = setInterval(() => {
        // A sweep re-verifies the cluster as the planner sees it: with a watch down that
        // view is not the cluster's, and its cases would test pods that may be gone.
        const stale = watching.staleSince;
        if (stale) {
          logger.warn('sweep skipped: the cluster view is stale', { since: stale.toISOString() });
          return;
        }
        plans.sweep();
      }, config.SWEEP_INTERVAL_MS);
    },
    onApplicationShutdown: async () => {
      stopping = true;
      clearInterval(sweep);
      for (const stop of stops) await stop();
      await watcher?.stop();
      await runner?.idle();
      // Synthetic sources are Lumen's to clean up.
      await core?.removeSyntheticSources();
      await bus?.close();
    },
  };
}

await bootService('planner', plannerConfigSchema, (config) =>
  serviceModule(withLeadership('planner', config, plannerWorker(config))),
);
