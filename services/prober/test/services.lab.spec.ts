/**
 * The four services as separate processes (the Helm chart's shape) against a lab, a private
 * nats-server and SQLite.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, connect as tcpConnect, type Socket } from 'node:net';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { LabNames, faultedEvaluator, labFault, parseFault } from '#lumen/lab';
import { newCalloutIssuer, startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { loadScenarioFile } from '#lumen/scenario';
import { CaseStore, type OutcomeRow, type StoreLocation } from '#lumen/store';
import {
  TEST_LAB_ROOT,
  calloutNatsServer,
  containerEnvironment,
  conformanceScenarioFiles,
  eventually,
  renderChart,
  repositoryRoot,
  startPrivatePostgres,
  type PrivatePostgres,
} from '#lumen/testing';
import { freePort } from '#lumen/host';
import { connect } from 'nats';
import { TEST_CASE_SUBJECT } from '#lumen/contracts';
import { upLab, type TestLab } from '../../../libs/lab/test/support.js';

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('/07-allow-traffic-from-some-pods'),
)!;
const NODES = ['lab-node-1', 'lab-node-2'];

interface Running {
  readonly nats: PrivateNatsServer;
  readonly lab: TestLab;
  /** The reporter's store: SQLite in the scratch folder, or a private PostgreSQL. */
  readonly store: StoreLocation;
  /** The reporter's webhook receiver: every alert it sent. */
  readonly alerts: AlertReceiver;
  readonly children: ChildProcess[];
  readonly probers: Map<string, ChildProcess>;
  /** Every service's HTTP port. */
  readonly ports: number[];
  /** The folder of the services' logs, one file per process. */
  readonly logs: string;
  startProber(node: string): Promise<ChildProcess>;
  /** The reporter's process now, and a way to start it again on the same store. */
  reporter(): ChildProcess;
  /** The reporter's HTTP port now. */
  reporterPort(): number;
  readonly schedulers: ChildProcess[];
  /** The planner's process, once started. */
  planner(): ChildProcess;
  /** Between the planner and the lab's API, when the test cuts the API off. */
  apiProxy(): TcpProxy | undefined;
  startScheduler(): Promise<ChildProcess>;
  startReporter(): Promise<ChildProcess>;
}

let running: Running | undefined;

/**
 * A TCP relay to the lab's API emulator that the test can cut: every connection is
 * dropped and the port refuses new ones (the API unreachable) until it is restored.
 */
class TcpProxy {
  private server: ReturnType<typeof createTcpServer> | undefined;
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly port: number,
    private readonly upstream: number,
  ) {}

  static async start(upstream: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), upstream);
    await proxy.restore();
    return proxy;
  }

  async restore(): Promise<void> {
    const server = createTcpServer((client) => {
      const upstream = tcpConnect(this.upstream, '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.pipe(to);
        from.on('error', () => to.destroy());
        from.on('close', () => {
          this.sockets.delete(from);
          to.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

/** The reporter API's token in the drills. */
const DRILL_API_TOKEN = 'drill-api-token-0123456789abcdef';

/** Each service process's HTTP port. */
const servicePorts = new WeakMap<ChildProcess, number>();

interface AlertSeen {
  readonly caseId: string;
  readonly status: string;
}

/** The reporter's webhook receiver: a real HTTP server keeping every alert it was sent. */
class AlertReceiver {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly alerts: AlertSeen[],
  ) {}

  static async start(): Promise<AlertReceiver> {
    const port = await freePort();
    const alerts: AlertSeen[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          data: { alerts: AlertSeen[] };
        };
        for (const alert of event.data.alerts)
          alerts.push({ caseId: alert.caseId, status: alert.status });
        response.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new AlertReceiver(server, `http://127.0.0.1:${port}/hook`, alerts);
  }

  firing(): string[] {
    return this.alerts.filter((a) => a.status === 'firing').map((a) => a.caseId);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

interface ServiceRun {
  nats: PrivateNatsServer;
  children: ChildProcess[];
  logs: string;
  ports: number[];
  /** Per-service NATS passwords, when the server enforces the chart's permissions. */
  passwords?: Record<string, string>;
  /** Every service logs at debug level, so that a test sees all it could ever log. */
  debugLogs?: boolean;
}

async function spawnService(
  run: ServiceRun,
  name: string,
  env: Record<string, string>,
): Promise<ChildProcess> {
  const password = run.passwords?.[name];
  const port = await freePort();
  run.ports.push(port);
  const child = spawn(
    process.execPath,
    [join(repositoryRoot, 'dist', 'services', name, 'src', 'main.js')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        NATS_URL: run.nats.url,
        HTTP_PORT: String(port),
        ...(password ? { NATS_USER: name, NATS_PASSWORD: password } : {}),
        ...(run.debugLogs ? { LOG_LEVEL: 'debug' } : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  // The services' JSON logs, kept beside the test's store for when a test fails.
  const log = createWriteStream(join(run.logs, `${name}-${port}.log`), { flags: 'a' });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  run.children.push(child);
  servicePorts.set(child, port);
  return child;
}

/** The chart's NATS users, and the auth callout issuer its hook Job would make. */
interface ChartNats {
  readonly authorization: string;
  /** The variables the authorization block names, as the chart's StatefulSet sets them. */
  readonly env: Record<string, string>;
  readonly passwords: Record<string, string>;
  readonly issuer: { readonly seed: string; readonly issuer: string };
}

/**
 * What the chart gives each node's prober (ADR 0016): a pod of the prober DaemonSet on that
 * node, in Lumen's namespace (opted out, as the chart's is not probed), and a projected
 * token bound to that pod for the lumen-nats audience, from the lab's TokenRequest.
 */
async function proberIdentities(labName: string, dir: string): Promise<Map<string, string>> {
  const config = new KubeConfig();
  config.loadFromFile(new LabNames(labName, TEST_LAB_ROOT).kubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name: 'lumen', labels: { 'lumen.dev/ignore': 'true' } } },
  });
  const files = new Map<string, string>();
  for (const node of NODES) {
    const name = `lumen-prober-${node}`;
    const pod = await core.createNamespacedPod({
      namespace: 'lumen',
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/component': 'prober' } },
        spec: { nodeName: node, containers: [{ name: 'prober', image: 'lumen' }] },
      },
    });
    await eventually(
      async () =>
        (await core.readNamespacedPod({ namespace: 'lumen', name })).status?.phase === 'Running',
      `prober pod ${name} running`,
      30_000,
      200,
    );
    const request = await core.createNamespacedServiceAccountToken({
      namespace: 'lumen',
      name: 'lumen-prober',
      body: {
        spec: {
          audiences: ['lumen-nats'],
          expirationSeconds: 3600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata?.uid ?? '' },
        },
      },
    });
    const file = join(dir, `${node}.token`);
    writeFileSync(file, request.status?.token ?? '', { mode: 0o600 });
    files.set(node, file);
  }
  return files;
}

/** A lab of recipe 07 with the four services on it; probers one per node. */
async function startAll(
  labName: string,
  chartNats?: ChartNats,
  options: {
    readonly standbyScheduler?: boolean;
    /** Lab faults to start with (the enforcer breaks policies as they say). */
    readonly faults?: readonly string[];
    /** The reporter's first re-probe delay. */
    readonly backoffMs?: number;
    /** The reporter's store, instead of SQLite. */
    readonly postgres?: PrivatePostgres;
    /** The planner's settings beyond the lab's. */
    readonly plannerEnv?: Record<string, string>;
    /** The planner reaches the lab's API through a TcpProxy the test can cut. */
    readonly apiProxy?: boolean;
  } = {},
): Promise<Running> {
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-services-'));
  const nats = await startPrivateNatsServer({
    storeDir: join(scratch, 'nats'),
    // The chart's server, 2.10 (bootstrap fetched it), with the chart's configuration or none.
    ...(chartNats
      ? { config: chartNats.authorization, env: chartNats.env, binary: calloutNatsServer() }
      : {}),
  });
  const lab = await upLab(labName, recipe07, options.faults ?? []);
  const tokens = chartNats ? await proberIdentities(labName, scratch) : undefined;
  const schedulers: ChildProcess[] = [];
  const store: StoreLocation = options.postgres
    ? { kind: 'postgres', url: options.postgres.url }
    : { kind: 'sqlite', path: join(scratch, 'lumen.db') };
  const alerts = await AlertReceiver.start();
  const apiTokens = join(scratch, 'api-tokens.yaml');
  writeFileSync(apiTokens, `tokens:\n  - { name: drill, token: ${DRILL_API_TOKEN} }\n`);
  const receivers = join(scratch, 'receivers.yaml');
  writeFileSync(
    receivers,
    `receivers:\n  - { name: drill, type: webhook, url: "${alerts.url}", secret: drill-secret-0123456789 }\n`,
  );
  const children: ChildProcess[] = [];
  const probers = new Map<string, ChildProcess>();
  const ports: number[] = [];
  const base: ServiceRun = {
    nats,
    children,
    logs: scratch,
    ports,
    ...(chartNats ? { passwords: chartNats.passwords, debugLogs: true } : {}),
  };
  const startProber = async (node: string): Promise<ChildProcess> => {
    const child = await spawnService(base, 'prober', {
      NODE_NAME: node,
      POD_CIDRS: '10.244.0.0/16',
      HEARTBEAT_TTL_MS: '3000',
      NMAP_HOST_TIMEOUT_MS: '5000',
      ...(tokens ? { NATS_TOKEN_FILE: tokens.get(node) ?? '' } : {}),
    });
    probers.set(node, child);
    return child;
  };
  const startScheduler = async (replica = 'a'): Promise<ChildProcess> => {
    const scheduler = await spawnService(base, 'scheduler', {
      HEARTBEAT_TTL_MS: '3000',
      ...(chartNats ? calloutEnv(chartNats, labName, scratch) : {}),
      ...(options.standbyScheduler
        ? {
            LEADER_ELECTION: 'true',
            LEASE_DURATION_SECONDS: '5',
            POD_NAME: `lumen-scheduler-${replica}`,
            POD_NAMESPACE: 'default',
            KUBECONFIG: new LabNames(labName, TEST_LAB_ROOT).kubeconfig,
          }
        : {}),
    });
    schedulers.push(scheduler);
    return scheduler;
  };
  let reporter: ChildProcess | undefined;
  const startReporter = async (): Promise<ChildProcess> => {
    reporter = await spawnService(base, 'reporter', {
      ...(store.kind === 'postgres' ? { DATABASE_URL: store.url } : { SQLITE_PATH: store.path }),
      ALERT_RECEIVERS_FILE: receivers,
      API_TOKENS_FILE: apiTokens,
      // Alerts leave at once, and a repeat would not wait long.
      ALERT_GROUP_WAIT_MS: '200',
      ALERT_GROUP_INTERVAL_MS: '1000',
      SETTLE_WINDOW_MS: '1000',
      BACKOFF_MS: String(options.backoffMs ?? 300),
    });
    return reporter;
  };
  // Started last, below; the run reads them through these.
  const later: { planner?: ChildProcess; apiProxy?: TcpProxy } = {};
  running = {
    planner: () => {
      if (!later.planner) throw new Error('the planner has not started');
      return later.planner;
    },
    apiProxy: () => later.apiProxy,
    nats,
    lab,
    store,
    alerts,
    children,
    probers,
    ports,
    logs: scratch,
    startProber,
    schedulers,
    startScheduler,
    reporter: () => {
      if (!reporter) throw new Error('the reporter has not started');
      return reporter;
    },
    reporterPort: () => servicePorts.get(running!.reporter()) ?? 0,
    startReporter,
  };
  await startReporter();
  for (const replica of options.standbyScheduler ? ['a', 'b'] : ['a'])
    await startScheduler(replica);
  // A prober that connects before the callout listens waits out the server's auth timeout
  // (2 s) and tries again, while the round's cases already read "no live prober": the
  // probers start once the callout answers, as they would long after it in a cluster.
  if (chartNats)
    await eventually(
      () =>
        readdirSync(scratch)
          .filter((f) => f.startsWith('scheduler-'))
          .some((f) =>
            readFileSync(join(scratch, f), 'utf8').includes('answering the NATS auth callout'),
          ),
      'the scheduler to answer the auth callout',
      30_000,
      50,
    );
  for (const node of NODES) await startProber(node);
  const labKubeconfig = new LabNames(labName, TEST_LAB_ROOT).kubeconfig;
  let plannerKubeconfig = labKubeconfig;
  if (options.apiProxy) {
    const text = readFileSync(labKubeconfig, 'utf8');
    const apiPort = Number(/server: https:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    const apiProxy = await TcpProxy.start(apiPort);
    later.apiProxy = apiProxy;
    plannerKubeconfig = join(scratch, 'planner-kubeconfig');
    writeFileSync(
      plannerKubeconfig,
      text.replace(`127.0.0.1:${apiPort}`, `127.0.0.1:${apiProxy.port}`),
    );
  }
  later.planner = await spawnService(base, 'planner', {
    KUBECONFIG: plannerKubeconfig,
    DEBOUNCE_MS: '200',
    ...options.plannerEnv,
  });
  return running;
}

/** The scheduler's auth callout settings, as the chart sets them (scheduler.yaml). */
function calloutEnv(chartNats: ChartNats, labName: string, dir: string): Record<string, string> {
  const seedFile = join(dir, 'callout-seed');
  writeFileSync(seedFile, chartNats.issuer.seed, { mode: 0o600 });
  return {
    PROBER_AUTH_CALLOUT: 'true',
    NATS_AUTH_CALLOUT_USER: 'lumen-auth',
    NATS_AUTH_CALLOUT_PASSWORD: chartNats.passwords['auth'] ?? '',
    NATS_AUTH_CALLOUT_SEED_FILE: seedFile,
    PROBER_SERVICE_ACCOUNT: 'lumen-prober',
    PROBER_POD_LABELS: 'app.kubernetes.io/component=prober',
    POD_NAMESPACE: 'lumen',
    KUBECONFIG: new LabNames(labName, TEST_LAB_ROOT).kubeconfig,
  };
}

/**
 * The chart's rendered NATS users and permissions (helm template, default values: per-node
 * prober credentials), with the issuer key its hook Job would make.
 */
async function chartNatsAuthorization(): Promise<ChartNats> {
  const objects = await renderChart(repositoryRoot);
  const secret = (name: string): Record<string, string> =>
    (objects.find((o) => o.kind === 'Secret' && o.metadata.name === name)?.['stringData'] ??
      {}) as Record<string, string>;
  const config = secret('lumen-nats-config')['nats.conf'] ?? '';
  const users = secret('lumen-nats-users');
  const issuer = newCalloutIssuer();
  return {
    authorization: config.slice(config.indexOf('authorization {')),
    // The StatefulSet's environment: the users' credentials and the issuer's public key.
    env: containerEnvironment(objects, { kind: 'StatefulSet', name: 'lumen-nats' }, 'nats', {
      podName: 'lumen-nats-0',
      namespace: 'lumen',
      secrets: { 'lumen-nats-callout': { issuer: issuer.issuer } },
    }),
    passwords: Object.fromEntries(
      ['planner', 'scheduler', 'reporter', 'auth'].map((s) => [s, users[`${s}-password`] ?? '']),
    ),
    issuer,
  };
}

/** Stops every service process (SIGTERM) and waits until each has exited. */
async function stopServices(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map((c) =>
      c.exitCode === null && c.signalCode === null
        ? new Promise<void>((resolve) => {
            c.once('exit', () => {
              resolve();
            });
            c.kill('SIGTERM');
          })
        : Promise.resolve(),
    ),
  );
}

async function stopAll(): Promise<void> {
  if (!running) return;
  const { children, lab, nats, alerts } = running;
  const proxy = running.apiProxy();
  running = undefined;
  await stopServices(children);
  await proxy?.cut();
  await alerts.stop();
  await lab.down();
  await nats.stop();
}

afterEach(stopAll);

async function judged(run: Running, count: number): Promise<OutcomeRow[]> {
  const store = await eventually(
    () => CaseStore.open(run.store).catch(() => undefined),
    'the reporter to create its store',
    30_000,
    200,
  );
  try {
    return await eventually(
      async () => {
        const stored = await store.outcomes();
        return stored.length === count ? stored : undefined;
      },
      `${count} judged cases`,
      90_000,
      200,
    );
  } catch (error) {
    // What each case went through, and what the services warned of: a drill that times out
    // in CI says why without its logs.
    const cases = await store.cases();
    const attempts = await store.attemptsOf(cases.map((c) => c.caseId));
    const judgedIds = new Set((await store.outcomes()).map((o) => o.caseId));
    const story = cases.map(
      (c) =>
        `${c.caseId} ${judgedIds.has(c.caseId) ? 'judged' : 'not judged'}; attempts: ${attempts
          .filter((a) => a.caseId === c.caseId)
          .map((a) => `${a.attempt}@${a.observedAt.toISOString()} ${a.reachability}`)
          .join(', ')}`,
    );
    throw new Error(`${String(error)}\n${story.join('\n')}\n${serviceWarnings(run.logs)}`, {
      cause: error,
    });
  } finally {
    await store.close();
  }
}

/** The services' warnings and errors, and their key events, from the logs of a run. */
function serviceWarnings(logs: string): string {
  const events = /"level":"(warn|error)"|"re-probe requested"|"batch dispatched"|"case judged"/;
  return readdirSync(logs)
    .filter((f) => f.endsWith('.log'))
    .flatMap((f) =>
      readFileSync(join(logs, f), 'utf8')
        .split('\n')
        // Lines that are not JSON log records too: a service that refused its configuration.
        .filter((line) => events.test(line) || (line.length > 0 && !line.startsWith('{')))
        .map((line) => `${f}: ${line.slice(0, 400)}`),
    )
    .join('\n');
}

/** All 4 cases pass, each judged once: one history entry, one round, no attempt twice. */
async function expectJudgedOnce(run: Running): Promise<void> {
  const outcomes = await judged(run, 4);
  expect(outcomes.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
  const store = await CaseStore.open(run.store);
  try {
    for (const outcome of outcomes) {
      expect(await store.history(outcome.caseId)).toHaveLength(1);
      const attempts = await store.attempts(outcome.caseId, outcome.round);
      expect(new Set(attempts.map((a) => a.attempt)).size).toBe(attempts.length);
    }
  } finally {
    await store.close();
  }
  // Nothing regressed: no alert (the reporter delivers within a second of a verdict).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(run.alerts.alerts).toEqual([]);
}

/** How many of recipe 07's cases a lab fault breaks. */
function casesBrokenBy(fault: string): number {
  const { cluster, expectations } = loadScenarioFile(recipe07);
  const faulted = faultedEvaluator(cluster, [parseFault(fault)]);
  const broken = expectations.filter((row) => faulted.verdict(row).allowed !== row.allowed);
  expect(broken.length).toBeGreaterThan(0);
  return broken.length;
}

/**
 * After the enforcer broke `brokenCount` cases: they fail, every round of every case was
 * judged at most once, no case that works failed, and each broken case alerted once.
 */
async function expectBrokenFailOnce(run: Running, brokenCount: number): Promise<void> {
  const store = await CaseStore.open(run.store);
  try {
    const failed = await eventually(
      async () => {
        const failing = (await store.outcomes()).filter((o) => o.outcome === 'fail');
        return failing.length === brokenCount && failing.map((o) => o.caseId).sort();
      },
      'the broken cases to fail',
      60_000,
      500,
    );
    for (const outcome of await store.outcomes()) {
      const history = await store.history(outcome.caseId);
      expect(new Set(history.map((h) => h.round)).size).toBe(history.length);
      if (!failed.includes(outcome.caseId))
        expect(history.map((h) => h.outcome).filter((o) => o !== 'pass')).toEqual([]);
      const attempts = await store.attempts(outcome.caseId, outcome.round);
      expect(new Set(attempts.map((a) => a.attempt)).size).toBe(attempts.length);
    }
    // One alert per broken case, however many rounds fail after it and whatever the fault
    // held up (a repeat would follow within the 1 s group interval).
    await eventually(
      () => run.alerts.firing().length >= failed.length,
      'the regressions to be alerted',
      30_000,
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(run.alerts.firing().sort()).toEqual(failed);
    expect(run.alerts.alerts.filter((a) => a.status !== 'firing')).toEqual([]);
  } finally {
    await store.close();
  }
}

/** A service's readiness answer: its status code and what it says. */
async function readiness(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return { status: response?.status ?? 0, body: (await response?.text()) ?? '' };
}

describe('the four services', () => {
  it('start as separate processes, become ready, and judge every case into the store', async () => {
    const run = await startAll('svc-all');
    expect(run.ports).toHaveLength(5);
    for (const port of run.ports)
      await eventually(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
        `the service on port ${port} to be ready`,
        30_000,
        200,
      );
    const outcomes = await judged(run, 4);
    expect(outcomes.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
    // Every service serves Prometheus metrics; each family comes from the service that owns it.
    const scrapes = await Promise.all(
      run.ports.map(async (port) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    );
    for (const text of scrapes) expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    const all = scrapes.join('\n');
    expect(all).toMatch(/^lumen_planned_cases [1-9]\d*$/m);
    // The lab's scenario has no policy of a kind Lumen does not model: nothing left unjudged.
    expect(all).toMatch(/^lumen_cases_not_judged 0$/m);
    expect(all).toMatch(/^lumen_scheduler_waiting_cases \d+$/m);
    expect(all).toMatch(
      /^lumen_probes_total\{node="lab-node-\d",reachability="reachable"\} [1-9]/m,
    );
    expect(all).toMatch(/^lumen_probe_batch_duration_seconds_count\{node="lab-node-\d"\} [1-9]/m);
    expect(all).toMatch(/^lumen_verdicts_total\{outcome="pass"\} 4$/m);
    const labels = new Set(
      [...all.matchAll(/^lumen_\w+\{([^}]*)\}/gm)].flatMap((m) =>
        (m[1] ?? '').split(',').map((l) => l.split('=')[0]),
      ),
    );
    // Bounded values only: no pod, pod pair, case or free-text label.
    for (const label of labels)
      expect([
        'le',
        'node',
        'reachability',
        'outcome',
        'policy_namespace',
        'policy',
        'subject',
        'receiver',
        'result',
        'severity',
        'group',
        'kind',
        'stream',
      ]).toContain(label);
    const store = await CaseStore.open(run.store);
    try {
      const attempts = await store.attempts(outcomes[0]!.caseId, outcomes[0]!.round);
      expect(attempts[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await store.close();
    }
  });

  it('work within the Helm chart’s per-service NATS users and subject permissions', async () => {
    const chart = await chartNatsAuthorization();
    const run = await startAll('svc-chart', chart);
    // The server enforces the chart's users: without a password nobody gets in.
    await expect(connect({ servers: run.nats.url.replace('nats://', '') })).rejects.toThrow(
      /Authorization/i,
    );
    const outcomes = await judged(run, 4);
    expect(outcomes.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
    // Each prober got in as its own node's user, vouched for by the lab's TokenReview.
    const schedulerLog = readdirSync(run.logs)
      .filter((f) => f.startsWith('scheduler-'))
      .map((f) => readFileSync(join(run.logs, f), 'utf8'))
      .join('');
    for (const node of NODES)
      expect(schedulerLog).toContain(
        `auth callout: admitted prober ${node} (lumen-prober-${node})`,
      );
    // No service logs a NATS password, at debug level, from start to shutdown.
    await stopServices(run.children);
    const logs = readdirSync(run.logs)
      .filter((f) => f.endsWith('.log'))
      .map((f) => ({ file: f, text: readFileSync(join(run.logs, f), 'utf8') }));
    for (const service of ['planner', 'scheduler', 'prober', 'reporter'])
      expect(logs.filter((l) => l.file.startsWith(`${service}-`) && l.text.length > 0)).not.toEqual(
        [],
      );
    const passwords = Object.values(chart.passwords);
    expect(passwords).toHaveLength(4);
    expect(passwords.every((p) => p.length >= 32)).toBe(true);
    // Nor the callout issuer's seed, nor a prober's token.
    const tokens = NODES.map((node) => readFileSync(join(run.logs, `${node}.token`), 'utf8'));
    expect(tokens.every((t) => t.length > 100)).toBe(true);
    const secrets = [...passwords, chart.issuer.seed, ...tokens];
    for (const { file, text } of logs)
      for (const secret of secrets)
        expect({ file, leaks: text.includes(secret) }).toEqual({ file, leaks: false });
  });

  it('loses and doubles nothing when the reporter is killed -9 in the middle of a round', async () => {
    const run = await startAll('svc-reporter-kill');
    // Kill the reporter as soon as it has judged its first case: the others are in flight.
    const reporter = run.reporter();
    await new Promise<void>((resolve) => {
      reporter.stdout!.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('"case judged"') || reporter.signalCode) return;
        reporter.kill('SIGKILL');
        resolve();
      });
    });
    await eventually(() => reporter.signalCode === 'SIGKILL', 'the reporter to die', 5000);
    await run.startReporter();
    await expectJudgedOnce(run);
  });

  it('loses and doubles nothing when the scheduler’s leader is killed -9 mid-round and the standby takes over', async () => {
    const run = await startAll('svc-leader-kill', undefined, { standbyScheduler: true });
    // The replica that wins the Lease says "leading"; kill it, once, when it has dispatched
    // the round's first batch: the rest of the round is still in its hands.
    let killed: ChildProcess | undefined;
    await new Promise<void>((resolve) => {
      for (const scheduler of run.schedulers) {
        let leading = false;
        scheduler.stdout!.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          if (text.includes('"leading"')) leading = true;
          if (killed || !leading || !text.includes('"batch dispatched"')) return;
          killed = scheduler;
          scheduler.kill('SIGKILL');
          resolve();
        });
      }
    });
    await eventually(() => killed?.signalCode === 'SIGKILL', 'the leader to die', 5000);
    // JetStream gives the dead leader's unacked cases to the standby after their ack wait.
    await expectJudgedOnce(run);
    const standby = run.schedulers.find((s) => s !== killed);
    expect(standby?.exitCode).toBeNull();
    // Two replicas led in turn: the one killed, then the standby.
    const schedulerLogs = readdirSync(run.logs)
      .filter((f) => f.startsWith('scheduler-'))
      .map((f) => readFileSync(join(run.logs, f), 'utf8'));
    expect(schedulerLogs.map((text) => text.match(/"leading"/g)?.length ?? 0).sort()).toEqual([
      1, 1,
    ]);
  });

  it('loses and doubles nothing when the scheduler restarts while re-probes wait in JetStream', async () => {
    // and-as-or breaks some of recipe 07's connections: those cases fail and are re-probed
    // (4 s before the first re-probe), the rest pass.
    const run = await startAll('svc-reprobe-restart', undefined, {
      faults: ['and-as-or'],
      backoffMs: 4000,
    });
    const reporter = run.reporter();
    await new Promise<void>((resolve) => {
      reporter.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('"re-probe requested"')) resolve();
      });
    });
    // The request waits, deferred, in JetStream: the scheduler dies and comes back.
    const [scheduler] = run.schedulers;
    scheduler!.kill('SIGKILL');
    await eventually(() => scheduler!.signalCode === 'SIGKILL', 'the scheduler to die', 5000);
    await run.startScheduler();
    const broken = casesBrokenBy('and-as-or');
    const outcomes = await judged(run, 4);
    expect(outcomes.filter((o) => o.outcome === 'fail')).toHaveLength(broken);
    expect(outcomes.filter((o) => o.outcome === 'pass')).toHaveLength(4 - broken);
    const store = await CaseStore.open(run.store);
    try {
      for (const outcome of outcomes) {
        expect(await store.history(outcome.caseId)).toHaveLength(1);
        const attempts = await store.attempts(outcome.caseId, outcome.round);
        expect(new Set(attempts.map((a) => a.attempt)).size).toBe(attempts.length);
        // A failure went through the re-probes the restart interrupted.
        if (outcome.outcome === 'fail') expect(attempts.length).toBeGreaterThan(1);
      }
    } finally {
      await store.close();
    }
    // These cases never passed: failing from the start is no regression, and no alert.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(run.alerts.alerts).toEqual([]);
  });

  it('loses, doubles and falsely fails nothing, and alerts once, when PostgreSQL restarts in the middle of a round', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'lumen-pg-drill-'));
    const postgres = await startPrivatePostgres(scratch);
    try {
      // A sweep every 10 s: a round passes, the enforcer breaks, the next rounds fail.
      const run = await startAll('svc-postgres', undefined, {
        postgres,
        plannerEnv: { SWEEP_INTERVAL_MS: '10000' },
      });
      const before = await judged(run, 4);
      expect(before.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
      const broken = casesBrokenBy('and-as-or');
      await labFault(run.lab.name, TEST_LAB_ROOT, 'set', 'and-as-or');
      // The next sweep's first batch: the database goes down under the round's results.
      const [scheduler] = run.schedulers;
      await new Promise<void>((resolve) => {
        scheduler!.stdout!.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('"batch dispatched"')) resolve();
        });
      });
      await postgres.crash();
      const down = Date.now();
      // Readiness says why while the results wait, unacked, for the store.
      const notReady = await eventually(
        async () => {
          const answer = await readiness(run.reporterPort());
          return answer.status === 503 && answer.body;
        },
        'the reporter to report the store outage',
        20_000,
        200,
      );
      expect(notReady).toContain('the store is unreachable since');
      // The API says why too, instead of a bare 500.
      const api = await fetch(`http://127.0.0.1:${run.reporterPort()}/api/v1/summary`, {
        headers: { authorization: `Bearer ${DRILL_API_TOKEN}` },
      });
      expect(api.status).toBe(503);
      expect(await api.text()).toContain('the store is unreachable');
      // Down for 15 s, through the next sweep: results and the new round's cases wait.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, 15_000 - (Date.now() - down))),
      );
      await postgres.start();
      await eventually(
        async () => (await readiness(run.reporterPort())).status === 200,
        'the reporter to be ready again',
        30_000,
        200,
      );
      await expectBrokenFailOnce(run, broken);
      const reporterLog = readdirSync(run.logs)
        .filter((f) => f.startsWith('reporter-'))
        .map((f) => readFileSync(join(run.logs, f), 'utf8'))
        .join('');
      expect(reporterLog).toContain('store unreachable: holding messages unacked until it answers');
      expect(reporterLog).toContain('store reachable again');
      expect(reporterLog).not.toContain('message dead-lettered');
    } finally {
      await stopAll();
      await postgres.stop();
    }
  });

  it('refuses new work at a full cases stream with a clear error and a metric, drops nothing it holds, and judges the held-up round once', async () => {
    // A sweep every 10 s: a round passes; then the scheduler stalls, a flood fills the cases
    // stream and the enforcer breaks, so the round the full stream refused is the one that
    // must still come through and fail.
    const run = await startAll('svc-stream-full', undefined, {
      plannerEnv: { SWEEP_INTERVAL_MS: '10000' },
    });
    const before = await judged(run, 4);
    expect(before.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
    const broken = casesBrokenBy('and-as-or');
    const nc = await connect({ servers: run.nats.url.replace('nats://', '') });
    const [scheduler] = run.schedulers;
    try {
      const jsm = await nc.jetstreamManager();
      const js = nc.jetstream();
      scheduler!.kill('SIGSTOP');
      await labFault(run.lab.name, TEST_LAB_ROOT, 'set', 'and-as-or');
      const config = (await jsm.streams.info('LUMEN_V1_CASES')).config;
      await jsm.streams.update('LUMEN_V1_CASES', { ...config, max_bytes: 256 * 1024 });
      // A runaway publisher floods it with junk until the server refuses, down to the byte:
      // no room is left for even the smallest case.
      // At 256 KiB and some 50 bytes of overhead a message, 10,000 publishes are far more
      // than the stream can hold: a stream that never refuses drops its oldest instead.
      const FLOOD_CAP = 10_000;
      let flood = 0;
      for (const size of [16_384, 1024, 64, 1]) {
        for (;;) {
          if (flood >= FLOOD_CAP)
            throw new Error(
              `LUMEN_V1_CASES took ${flood} messages at a 256 KiB limit without refusing one: it drops its oldest instead of refusing new work`,
            );
          const refusal = await js.publish(TEST_CASE_SUBJECT, new Uint8Array(size).fill(120)).then(
            () => undefined,
            (error: unknown) => (error as { api_error?: { description?: string } }).api_error,
          );
          if (refusal) {
            expect(refusal.description).toBe('maximum bytes exceeded');
            break;
          }
          flood += 1;
        }
      }
      expect(flood).toBeGreaterThan(15);
      // The planner's next sweep is refused: it says which stream and why, and counts it.
      const plannerLog = await eventually(
        () => {
          const text = readdirSync(run.logs)
            .filter((f) => f.startsWith('planner-'))
            .map((f) => readFileSync(join(run.logs, f), 'utf8'))
            .join('');
          return text.includes('planning failed') && text;
        },
        'the planner to meet the full stream',
        30_000,
        200,
      );
      expect(plannerLog).toContain(
        `stream LUMEN_V1_CASES is full (maximum bytes exceeded): the message on ${TEST_CASE_SUBJECT} was refused`,
      );
      const plannerPort = servicePorts.get(run.planner()) ?? 0;
      expect(await (await fetch(`http://127.0.0.1:${plannerPort}/metrics`)).text()).toMatch(
        /^lumen_publish_rejected_total\{stream="LUMEN_V1_CASES"\} [1-9]\d*$/m,
      );
      // Discard new: every message the stream held is still there, none dropped for room.
      expect((await jsm.streams.info('LUMEN_V1_CASES')).state.messages).toBeGreaterThanOrEqual(
        flood,
      );
      // The scheduler takes work again: the junk goes to the dead letters (once from each
      // consumer of the subject, the scheduler's and the reporter's), the stream empties,
      // and the next sweep gets in.
      scheduler!.kill('SIGCONT');
      await eventually(
        async () => (await jsm.streams.info('LUMEN_V1_DEAD')).state.messages === 2 * flood,
        'every junk message to be dead-lettered by both consumers',
        30_000,
        200,
      );
      await eventually(
        async () => (await jsm.streams.info('LUMEN_V1_CASES')).state.messages === 0,
        'the cases stream to empty',
        30_000,
        100,
      );
      const schedulerPort = servicePorts.get(scheduler!) ?? 0;
      const schedulerMetrics = await (
        await fetch(`http://127.0.0.1:${schedulerPort}/metrics`)
      ).text();
      expect(schedulerMetrics).toMatch(
        /^lumen_stream_limit_bytes\{stream="LUMEN_V1_CASES"\} 262144$/m,
      );
      expect(schedulerMetrics).toMatch(/^lumen_stream_bytes\{stream="LUMEN_V1_CASES"\} \d+$/m);
      await expectBrokenFailOnce(run, broken);
    } finally {
      if (scheduler!.signalCode === null) scheduler!.kill('SIGCONT');
      await nc.close();
    }
  });

  it('plans nothing from a stale view and blames no CNI while the Kubernetes API is unreachable for 60 s, then resumes', async () => {
    // A sweep every 10 s: six of them fall inside the outage.
    const run = await startAll('svc-api-outage', undefined, {
      apiProxy: true,
      plannerEnv: { SWEEP_INTERVAL_MS: '10000' },
    });
    await judged(run, 4);
    const plannerPort = servicePorts.get(run.planner()) ?? 0;
    const plannerReadiness = (): Promise<{ status: number; body: string }> =>
      readiness(plannerPort);
    await eventually(
      async () => (await plannerReadiness()).status === 200,
      'the planner to be ready',
      30_000,
      200,
    );
    const store = await CaseStore.open(run.store);
    try {
      await run.apiProxy()!.cut();
      const cutAt = Date.now();
      const notReady = await eventually(
        async () => {
          const answer = await plannerReadiness();
          return answer.status === 503 && answer.body;
        },
        'the planner to report its stale view',
        20_000,
        200,
      );
      expect(notReady).toContain('the cluster view is stale');
      // The cluster changes while the planner cannot see it: a namespace comes.
      const config = new KubeConfig();
      config.loadFromFile(new LabNames(run.lab.name, TEST_LAB_ROOT).kubeconfig);
      await config
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: 'made-during-the-outage' } } });
      // Rounds in progress finish; then nothing new is planned from the stale view.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const roundsBefore = new Map((await store.outcomes()).map((o) => [o.caseId, o.round]));
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, 60_000 - (Date.now() - cutAt))),
      );
      const roundsDuring = new Map((await store.outcomes()).map((o) => [o.caseId, o.round]));
      expect(roundsDuring).toEqual(roundsBefore);

      await run.apiProxy()!.restore();
      const restoredAt = Date.now();
      await eventually(
        async () => (await plannerReadiness()).status === 200,
        'the planner to be ready again',
        30_000,
        200,
      );
      // The informers listed again and saw the namespace; the next sweep plans a new round,
      // judged from a fresh view.
      const plannerLog = (): string =>
        readdirSync(run.logs)
          .filter((f) => f.startsWith('planner-'))
          .map((f) => readFileSync(join(run.logs, f), 'utf8'))
          .join('');
      await eventually(
        () =>
          plannerLog()
            .split('\n')
            .some(
              (line) =>
                line.includes('"cluster changed"') &&
                Date.parse((JSON.parse(line) as { time: string }).time) >= restoredAt,
            ),
        'the planner to see the change made during the outage',
        30_000,
        200,
      );
      await eventually(
        async () => {
          const outcomes = await store.outcomes();
          return (
            outcomes.length === 4 &&
            outcomes.every((o) => o.round > (roundsBefore.get(o.caseId) ?? Infinity))
          );
        },
        'a new round after the outage',
        60_000,
        500,
      );
      expect(plannerLog()).toContain('sweep skipped: the cluster view is stale');
      expect(plannerLog()).toContain('watch listing again');
      // No verdict blamed the CNI for the outage: every case passed in every round.
      for (const outcome of await store.outcomes()) {
        const history = await store.history(outcome.caseId);
        expect(history.map((h) => h.outcome).filter((o) => o !== 'pass')).toEqual([]);
        expect(new Set(history.map((h) => h.round)).size).toBe(history.length);
      }
      expect(run.alerts.alerts).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('loses and doubles nothing when a prober is killed -9 in the middle of a batch', async () => {
    const run = await startAll('svc-kill');
    // Kill the first prober that starts a batch, while its nmap runs.
    const killed = await new Promise<string>((resolve) => {
      let done = false;
      for (const [node, child] of run.probers)
        child.stdout!.on('data', (chunk: Buffer) => {
          if (done || !chunk.toString().includes('"batch received"')) return;
          done = true;
          child.kill('SIGKILL');
          resolve(node);
        });
    });
    await eventually(
      () => run.probers.get(killed)!.signalCode === 'SIGKILL',
      'the prober to die',
      5000,
    );
    await run.startProber(killed);
    await expectJudgedOnce(run);
  });
});
