import { randomUUID } from 'node:crypto';
import { ClusterWatcher, SyntheticPods, loadKubeConfig, type ClusterSnapshot } from '#lumen/kube';
import { systemClock, type Log } from '#lumen/contracts';
import { kernelSupportsSctp } from '#lumen/host';
import {
  ManagedProberRegistry,
  MessageBus,
  ProberRegistry,
  StreamedBatches,
} from '#lumen/messaging';
import {
  PLANNER_DEFAULTS,
  PlanRunner,
  PlannerCore,
  subscribePlanner,
  noPlannerMetrics,
  type PlanPublished,
  type PlannerSettings,
} from '#lumen/planner';
import type { Cidr } from '#lumen/policy';
import {
  PROBER_DEFAULTS,
  ProberWorker,
  defaultProberSettings,
  heartbeatIntervalMs,
  hostProbeHost,
  noProberMetrics,
} from '#lumen/prober';
import {
  ReporterCore,
  noReporterMetrics,
  ResultGate,
  subscribeReporter,
  startRetention,
  REPORTER_DEFAULTS,
  type FinalOutcome,
  type RaceSettings,
} from '#lumen/reporter';
import {
  PROBER_CONSUMER_SETTINGS,
  PROBER_WATCH_INTERVAL_MS,
  SchedulerCore,
  noSchedulerMetrics,
  subscribeScheduler,
  type SchedulerSettings,
} from '#lumen/scheduler';
import { CaseStore, type StoreLocation } from '#lumen/store';
import { caseTracer } from '#lumen/telemetry';

export interface LocalPipelineOptions {
  readonly kubeconfig: string;
  readonly natsUrl: string;
  readonly natsCredentials?: { readonly user: string; readonly password: string };
  /** PEM of the CA that signed the server's certificate; natsUrl must be tls://. */
  readonly natsCaFile?: string;
  readonly store: StoreLocation;
  readonly planner: PlannerSettings;
  readonly scheduler: SchedulerSettings;
  readonly race: RaceSettings;
  /** Run a prober in this process for every node that has pods (the lab), or rely on in-cluster probers. */
  readonly localProbers: boolean;
  readonly podCidrs: readonly Cidr[];
  readonly heartbeatTtlMs: number;
  /** 0: no periodic sweep. */
  readonly sweepIntervalMs: number;
  readonly debounceMs: number;
  readonly log: Log;
  /** Create synthetic source pods in this namespace for near misses no real pod covers. */
  readonly syntheticSources?: { readonly namespace: string; readonly image: string };
}

/**
 * Planner, scheduler and reporter (and, in the lab, one prober per node) in one process,
 * talking over JetStream exactly as the separate services do. `lumen run --once` and the
 * end-to-end tests use it. Its consumers see only messages published after it started,
 * and the server forgets them a minute after it stops.
 */
export class LocalPipeline {
  private readonly outcomes = new Map<string, FinalOutcome>();
  private readonly probed = new Set<string>();
  /** Every final outcome, in the order the reporter stored them. */
  readonly outcomeLog: FinalOutcome[] = [];
  private readonly stops: (() => Promise<void> | void)[] = [];
  private readonly probers = new Map<string, ProberWorker>();
  private readonly listeners = new Set<() => void>();
  /** Views merged while a plan runs; onSnapshot reports its own failures. */
  private readonly plans = new PlanRunner<ClusterSnapshot>(
    { update: (snapshot) => this.onSnapshot(snapshot), sweep: () => this.sweep() },
    (error) => {
      this.options.log.warn('planning failed', { error: String(error) });
    },
  );
  private lastPlan: PlanPublished | undefined;
  private readonly runId = randomUUID().slice(0, 8);
  planner!: PlannerCore;
  scheduler!: SchedulerCore;
  reporter!: ReporterCore;
  bus!: MessageBus;
  store!: CaseStore;
  registry!: ProberRegistry;
  private readonly errors: string[] = [];
  private stopping = false;
  private notifying: NodeJS.Timeout | undefined;

  private constructor(private readonly options: LocalPipelineOptions) {}

  static async start(options: LocalPipelineOptions): Promise<LocalPipeline> {
    const pipeline = new LocalPipeline(options);
    try {
      await pipeline.connect();
    } catch (error) {
      await pipeline.stop();
      throw error;
    }
    return pipeline;
  }

  /** Resolves when a prober of every node heartbeats (probers started elsewhere: a DaemonSet). */
  async untilProbersLive(nodes: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stopping) {
      const live = await this.registry.live();
      const missing = nodes.filter((n) => !live.has(n));
      if (missing.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `no prober heartbeat from ${missing.join(', ')} after ${Math.round(timeoutMs / 1000)} s: are the DaemonSet's pods running, and can they reach NATS (--pod-nats-url)?`,
        );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error('stopped before the probers were live');
  }

  /** Cases of the current plan: planned, probed at least once, judged. */
  progress(): { planned: number; probed: number; judged: number } {
    const ids = this.planner.plan?.cases.map((c) => c.caseId) ?? [];
    return {
      planned: ids.length,
      probed: ids.filter((id) => this.probed.has(id)).length,
      judged: ids.filter((id) => this.outcomes.has(id)).length,
    };
  }

  /** The newest final outcome of each case. */
  get finalOutcomes(): ReadonlyMap<string, FinalOutcome> {
    return this.outcomes;
  }

  private async connect(): Promise<void> {
    const { options } = this;
    const log = options.log;
    this.bus = await MessageBus.connect({
      url: options.natsUrl,
      service: 'lumen-run',
      log,
      ...(options.natsCredentials
        ? { user: options.natsCredentials.user, pass: options.natsCredentials.password }
        : {}),
      ...(options.natsCaFile ? { caFile: options.natsCaFile } : {}),
    });
    this.stops.push(() => this.bus.close());
    this.registry = await ProberRegistry.open(this.bus, options.heartbeatTtlMs);
    this.store = await CaseStore.open(options.store);
    this.stops.push(() => this.store.close());
    const synthetic = options.syntheticSources;
    this.planner = new PlannerCore(
      {
        bus: this.bus,
        clock: systemClock,
        log,
        tracer: caseTracer('planner'),
        metrics: noPlannerMetrics,
        ...(synthetic
          ? { synthetic: new SyntheticPods(loadKubeConfig(options.kubeconfig), synthetic.image) }
          : {}),
      },
      synthetic ? { ...options.planner, syntheticNamespace: synthetic.namespace } : options.planner,
    );
    this.scheduler = new SchedulerCore(
      {
        bus: this.bus,
        // As the scheduler service: it makes each node's prober consumer (ADR 0014).
        probers: new ManagedProberRegistry(this.registry, this.bus, PROBER_CONSUMER_SETTINGS),
        clock: systemClock,
        log,
        tracer: caseTracer('scheduler'),
        metrics: noSchedulerMetrics,
      },
      options.scheduler,
    );
    this.stops.push(() => {
      this.scheduler.stop();
    });
    this.reporter = new ReporterCore(
      {
        bus: this.bus,
        store: this.store,
        clock: systemClock,
        log,
        tracer: caseTracer('reporter'),
        metrics: noReporterMetrics,
        events: {
          attemptStored: (caseId) => this.probed.add(caseId),
          verdict: (outcome) => {
            this.outcomes.set(outcome.caseId, outcome);
            this.outcomeLog.push(outcome);
            this.notify();
          },
        },
      },
      options.race,
    );
    const naming = { prefix: `once-${this.runId}-`, oneShot: true };
    this.stops.push(...(await subscribeScheduler(this.bus, this.scheduler, naming)));
    this.stops.push(
      ...(await subscribeReporter(
        this.bus,
        this.reporter,
        naming,
        new ResultGate(new StreamedBatches(this.bus)),
      )),
    );
    this.stops.push(...(await subscribePlanner(this.bus, this.planner, naming)));
    // A long `lumen run` keeps its store bounded as the reporter service does.
    this.stops.push(
      startRetention({ store: this.store, clock: systemClock, log }, REPORTER_DEFAULTS.retention),
    );
    this.scheduler.watchProbers(PROBER_WATCH_INTERVAL_MS);
  }

  /** Watches the cluster; every debounced change re-plans and publishes what changed. */
  async watch(): Promise<void> {
    const watcher = new ClusterWatcher(loadKubeConfig(this.options.kubeconfig), {
      debounceMs: this.options.debounceMs,
      discoveryMs: PLANNER_DEFAULTS.crdDiscoveryMs,
      onDiscovered: (kind, group) => {
        this.options.log.info('a policy CRD was installed; its objects are now watched', {
          kind,
          group,
        });
      },
      onSnapshot: (snapshot) => {
        // Nothing is planned once stopping began: synthetic sources are being removed.
        if (!this.stopping) this.plans.change(snapshot);
      },
      onError: (kind, error) => {
        if (this.stopping) return;
        this.options.log.warn('watch failed; relisting', { kind, error: String(error) });
      },
    });
    // Stopped in reverse: the watcher first, then the plan in progress ends (its reconcile
    // could otherwise make the synthetic namespace again after it is removed), then the
    // synthetic pods go, as the planner service does.
    this.stops.push(() => this.planner.removeSyntheticSources());
    this.stops.push(() => this.plans.idle());
    this.stops.push(() => watcher.stop());
    await watcher.start();
    if (this.options.sweepIntervalMs > 0) {
      const sweepTimer = setInterval(() => {
        this.plans.sweep();
      }, this.options.sweepIntervalMs);
      this.stops.push(() => {
        clearInterval(sweepTimer);
      });
    }
  }

  private async onSnapshot(snapshot: ClusterSnapshot): Promise<void> {
    try {
      if (this.options.localProbers) await this.ensureProbers(snapshot);
      this.lastPlan = await this.planner.update(snapshot);
      this.notify();
    } catch (error) {
      this.errors.push(`planning failed: ${String(error)}`);
      this.options.log.warn('planning failed', { error: String(error) });
      this.notify();
    }
  }

  /** Publishes every case again, as the periodic sweep does. */
  async sweep(): Promise<PlanPublished | undefined> {
    const published = await this.planner.sweep();
    if (published) this.lastPlan = published;
    this.notify();
    return published;
  }

  private async ensureProbers(snapshot: ClusterSnapshot): Promise<void> {
    const nodes = new Set(snapshot.pods.flatMap((p) => (p.node ? [p.node] : [])));
    for (const node of nodes) {
      if (this.probers.has(node)) continue;
      const worker = this.localProber(node);
      this.probers.set(node, worker);
      await worker.start();
      this.stops.push(() => worker.stop());
    }
  }

  /** A prober for one node, as the DaemonSet runs it (real nsenter and nmap). */
  private localProber(node: string): ProberWorker {
    const settings = defaultProberSettings(node, this.options.podCidrs, kernelSupportsSctp());
    return new ProberWorker(
      {
        bus: this.bus,
        heartbeats: this.registry,
        host: hostProbeHost(settings.hostTimeoutMs + 10_000),
        log: this.options.log,
        tracer: caseTracer('prober'),
        metrics: noProberMetrics,
      },
      {
        settings,
        instance: randomUUID(),
        version: '0.1.0',
        heartbeatIntervalMs: heartbeatIntervalMs(this.options.heartbeatTtlMs),
        concurrency: PROBER_DEFAULTS.concurrency,
      },
    );
  }

  /**
   * Tells the waiters that something changed, at most every 100 ms: a check walks the whole
   * plan, and one per verdict made a 20,000-case run quadratic.
   */
  private notify(): void {
    if (this.notifying) return;
    this.notifying = setTimeout(() => {
      this.notifying = undefined;
      for (const listener of this.listeners) listener();
    }, 100);
  }

  /**
   * Resolves once a plan has been published and every case of it has a final outcome
   * from that plan's generation or later.
   */
  async untilJudged(timeoutMs: number, from?: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.errors.length > 0) {
          finish();
          reject(new Error(this.errors.join('; ')));
          return;
        }
        const plan = this.lastPlan;
        if (!plan || (from !== undefined && plan.generation < from)) return;
        if (this.planner.awaitingSyntheticSources) return;
        const cases = this.planner.plan?.cases ?? [];
        // Fewer verdicts than cases: not every case can be judged yet.
        if (this.outcomes.size < cases.length) return;
        const ids = cases.map((c) => c.caseId);
        const judged = (id: string): boolean =>
          (this.outcomes.get(id)?.round ?? -1) >=
          Math.max(this.planner.publishedGeneration(id) ?? 0, from ?? 0);
        if (ids.every(judged)) {
          finish();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        finish();
        const plan = this.planner.plan?.cases ?? [];
        const open = plan.filter(
          (c) =>
            (this.outcomes.get(c.caseId)?.round ?? -1) <
            (this.planner.publishedGeneration(c.caseId) ?? 0),
        );
        reject(
          new Error(
            `${open.length} of ${plan.length} cases had no verdict after ${Math.round(timeoutMs / 1000)} s` +
              (this.lastPlan ? '' : ' (no plan: is the cluster reachable?)'),
          ),
        );
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.notifying);
    // Last started, first stopped: probers and the watcher, then consumers, then the store and bus.
    for (const stop of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        this.options.log.warn('stopping failed', { error: String(error) });
      }
    }
  }
}
