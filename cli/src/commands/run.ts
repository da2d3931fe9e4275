import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProberDaemonSet, loadKubeConfig } from '#lumen/kube';
import {
  PROBER_PERMISSIONS,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { parseCidr, type Cidr } from '#lumen/policy';
import type { Log } from '#lumen/contracts';
import {
  ONE_PASS_MS,
  PLANNER_DEFAULTS,
  expectationCoverage,
  policyInventory,
  type CoverageMode,
} from '#lumen/planner';
import { PROBER_DEFAULTS } from '#lumen/prober';
import { loadScenarioFile } from '#lumen/scenario';
import { storeLocation } from '#lumen/store';
import { REPORTER_DEFAULTS, type RaceSettings } from '#lumen/reporter';
import { SCHEDULER_DEFAULTS } from '#lumen/scheduler';
import { startTelemetry } from '#lumen/telemetry';
import { cliConfig, type CliConfig } from '../config.js';
import { ExitCode, UsageError, type CommandIo } from '../io.js';
import { LocalPipeline } from '../pipeline/local-pipeline.js';
import {
  buildReport,
  coverageText,
  reportTable,
  runCoverage,
  type RunReport,
} from '../pipeline/report.js';
import { htmlReport } from '../pipeline/html-report.js';
import { gateFails, junitReport, parseFailOn, type FailOn } from '../pipeline/junit.js';
import { showProgress } from '../pipeline/progress.js';

const VERSION = '0.1.0';
const race = REPORTER_DEFAULTS.race;

type ProberMode = 'local' | 'cluster' | 'daemonset';

function proberMode(
  values: { probers: string; 'no-local-probers': boolean },
  natsUrl: string | undefined,
): ProberMode {
  if (values['no-local-probers']) return 'cluster';
  if (values.probers === 'auto') return natsUrl ? 'cluster' : 'daemonset';
  if (values.probers === 'local' || values.probers === 'cluster' || values.probers === 'daemonset')
    return values.probers;
  throw new UsageError(
    `--probers must be auto, daemonset, cluster or local, not "${values.probers}"`,
  );
}

/** This machine's first non-loopback IPv4 address: where pods may reach a run's NATS. */
function hostAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && !a.internal);
  if (!found) throw new UsageError('no non-loopback IPv4 address here: give --pod-nats-url');
  return found.address;
}

export const runUsage = `Usage: lumen run --once --kubeconfig FILE [OPTIONS]
       lumen run --cleanup --kubeconfig FILE [--prober-namespace NS]

One full verification pass: plan every case from the cluster's policies, probe each from
inside a real source pod, retry races, print the table, exit. Needs a NATS server with
JetStream (NATS_URL), or starts a private one. Results go to SQLite in a temporary
directory, or to PostgreSQL when DATABASE_URL is set.

Options:
  --once                  one pass, then exit (required: continuous verification runs as services)
  --cleanup               remove every DaemonSet and Secret earlier runs left in
                          --prober-namespace (a run killed with -9), and the namespace if a
                          run created it; do not use while a run is in progress. A run
                          itself removes those past their expiry (twice --timeout, plus 10 min)
  --kubeconfig FILE       the cluster (a lab's: /run/lumen/labs/<name>/kubeconfig)
  --json FILE             write the results as JSON
  --junit FILE            write a JUnit XML report: a testsuite per policy, a testcase per
                          case, the evidence in each failure
  --html FILE             write one self-contained HTML report (opens from disk, loads
                          nothing): the matrix, failures with evidence, coverage, and what
                          was not judged and why
  --fail-on LIST          outcomes that fail the run (exit 1): any of fail,flaky,inconclusive
                          (default fail,flaky)
  --expect FILE           a scenario file (- for standard input) whose expect rows to
                          account for: each is probed by a case or listed as not
                          generated, with the reason
  --timeout SECONDS       give up after this long (default 600)
  --settle-window SECONDS mismatches this soon after a change are re-probed (default ${race.settleWindowMs / 1000})
  --attempts N            probes per case before a firm verdict (default ${race.maxAttempts})
  --backoff SECONDS       first re-probe delay, doubling (default ${race.backoffMs / 1000})
  --confirm N             agreeing probes before a pass is final; more finds flaky CNIs (default ${race.confirmAttempts})
  --coverage MODE         what to probe (default ${PLANNER_DEFAULTS.coverage}):
                            full         every cell of the class matrix, and the obligations
                            obligations  each rule's must-allow and near misses, isolation
                            budget       the obligations, then matrix cells within the budget
  --probe-budget N        probes for --coverage budget (default: 50 per node and second of
                          a one-minute pass, half of it)
  --pod-cidrs LIST        targets probers accept (default ${PROBER_DEFAULTS.podCidrs})
  --probers MODE          where probes run (default auto):
                            daemonset  a temporary DaemonSet of Lumen's prober, removed at the
                                       end (also on Ctrl-C); says which RBAC it lacks, if any
                            cluster    the probers of a Lumen installed in the cluster (NATS_URL)
                            local      in this process, one per node: the lab, or a node itself
                            auto       cluster when NATS_URL is set, else daemonset
  --prober-image IMAGE    the DaemonSet's image (default ghcr.io/lumen-dev/lumen:${VERSION})
  --prober-namespace NS   the DaemonSet's namespace, created and removed if missing (default lumen-run)
  --pod-nats-url URL      how the DaemonSet's probers reach this run's NATS (default: this
                          machine's first non-loopback IPv4 address and the server's port)
  --no-local-probers      the same as --probers cluster
  --synthetic-sources     create labelled source pods in --synthetic-namespace (default
                          ${PLANNER_DEFAULTS.syntheticNamespace}) for near misses no real pod covers; removed at the end
  --synthetic-image IMAGE their image (default ${PLANNER_DEFAULTS.syntheticImage})

Progress (planned / probed / judged) goes to stderr: a bar on a terminal, lines otherwise.

Exit codes: 0 no case has an outcome in --fail-on, 1 one has (or --expect disagrees),
2 usage error, missing rights or an error that stopped the run.
`;

const options = {
  once: { type: 'boolean', default: false },
  cleanup: { type: 'boolean', default: false },
  kubeconfig: { type: 'string' },
  json: { type: 'string' },
  junit: { type: 'string' },
  html: { type: 'string' },
  'fail-on': { type: 'string', default: 'fail,flaky' },
  expect: { type: 'string' },
  timeout: { type: 'string', default: '600' },
  'settle-window': { type: 'string', default: String(race.settleWindowMs / 1000) },
  attempts: { type: 'string', default: String(race.maxAttempts) },
  backoff: { type: 'string', default: String(race.backoffMs / 1000) },
  confirm: { type: 'string', default: String(race.confirmAttempts) },
  coverage: { type: 'string', default: PLANNER_DEFAULTS.coverage },
  'probe-budget': { type: 'string', default: String(PLANNER_DEFAULTS.probeBudget) },
  'pod-cidrs': { type: 'string', default: PROBER_DEFAULTS.podCidrs },
  'no-local-probers': { type: 'boolean', default: false },
  probers: { type: 'string', default: 'auto' },
  'prober-image': { type: 'string', default: `ghcr.io/lumen-dev/lumen:${VERSION}` },
  'prober-namespace': { type: 'string', default: 'lumen-run' },
  'pod-nats-url': { type: 'string' },
  'synthetic-sources': { type: 'boolean', default: false },
  'synthetic-namespace': { type: 'string', default: PLANNER_DEFAULTS.syntheticNamespace },
  'synthetic-image': { type: 'string', default: PLANNER_DEFAULTS.syntheticImage },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function number(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, not "${text}"`);
  return value;
}

function failOnOption(text: string): FailOn {
  try {
    return parseFailOn(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function proberDaemonSet(
  values: { kubeconfig?: string | undefined; 'prober-image': string; 'prober-namespace': string },
  podCidrs: string,
  expiresAt: Date,
): ProberDaemonSet {
  return new ProberDaemonSet(loadKubeConfig(values.kubeconfig ?? ''), {
    namespace: values['prober-namespace'],
    runId: randomBytes(4).toString('hex'),
    image: values['prober-image'],
    podCidrs,
    expiresAt,
  });
}

/**
 * When a run's DaemonSet and Secret may be taken for leftovers: the probers' start and the
 * judging may each take the whole --timeout, and ten minutes more are a margin for clocks.
 */
function runExpiry(startedAt: Date, timeoutMs: number): Date {
  return new Date(startedAt.getTime() + 2 * timeoutMs + 10 * 60_000);
}

/** `lumen run --cleanup`: removes every earlier run's DaemonSet and Secret, and a namespace a run created. */
async function cleanUp(
  values: { kubeconfig?: string | undefined; 'prober-image': string; 'prober-namespace': string },
  io: CommandIo,
): Promise<number> {
  const now = new Date();
  const removed = await proberDaemonSet(values, '', now).removeLeftovers({ all: true, now });
  io.stdout(
    removed.length === 0
      ? `nothing left by earlier runs in namespace ${values['prober-namespace']}\n`
      : removed.map((r) => `removed ${r}\n`).join(''),
  );
  return ExitCode.ok;
}

function cidrs(text: string): Cidr[] {
  return text.split(',').map((part) => {
    const cidr = parseCidr(part.trim());
    if (!cidr) throw new UsageError(`--pod-cidrs: "${part.trim()}" is not a CIDR`);
    return cidr;
  });
}

function runSettings(values: {
  timeout: string;
  'settle-window': string;
  attempts: string;
  backoff: string;
  confirm: string;
  'pod-cidrs': string;
  coverage: string;
  'probe-budget': string;
}): {
  timeoutMs: number;
  race: RaceSettings;
  podCidrs: Cidr[];
  coverage: CoverageMode;
  probeBudget: number;
} {
  return {
    timeoutMs: number('timeout', values.timeout, 1, 86_400) * 1000,
    race: {
      settleWindowMs: number('settle-window', values['settle-window'], 0, 3600) * 1000,
      maxAttempts: number('attempts', values.attempts, 1, 20),
      backoffMs: number('backoff', values.backoff, 0, 600) * 1000,
      confirmAttempts: number('confirm', values.confirm, 1, 20),
    },
    podCidrs: cidrs(values['pod-cidrs']),
    coverage: coverageMode(values.coverage),
    probeBudget: number('probe-budget', values['probe-budget'], 0, 100_000_000),
  };
}

function coverageMode(text: string): CoverageMode {
  if (text === 'full' || text === 'obligations' || text === 'budget') return text;
  throw new UsageError(`--coverage must be full, obligations or budget, not "${text}"`);
}

function stderrLog(io: CommandIo): Log {
  return {
    info: () => undefined,
    warn: (message, fields) => {
      io.stderr(`lumen run: ${message} ${JSON.stringify(fields ?? {})}\n`);
    },
  };
}

/** Prints the table (and the coverage of --expect), writes --json; returns the exit code. */
function reportRun(
  io: CommandIo,
  pipeline: LocalPipeline,
  values: {
    json?: string | undefined;
    junit?: string | undefined;
    html?: string | undefined;
    expect?: string | undefined;
  },
  gate: { failOn: FailOn; startedAt: Date; coverage: CoverageMode },
): number {
  const plan = pipeline.planner.plan;
  const cases = buildReport(plan?.cases ?? [], pipeline.finalOutcomes);
  const engine = pipeline.planner.model;
  const report: RunReport =
    plan && engine
      ? {
          ...cases,
          coverage: runCoverage(
            gate.coverage,
            plan,
            cases,
            policyInventory(engine, 0).flatMap((part) => part.policies),
          ),
        }
      : cases;
  io.stdout(reportTable(report));
  if (report.coverage) io.stdout(coverageText(report.coverage));
  if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  const meta = {
    timestamp: gate.startedAt,
    durationSeconds: (Date.now() - gate.startedAt.getTime()) / 1000,
    hostname: hostname(),
  };
  if (values.junit) writeFileSync(values.junit, junitReport(report, gate.failOn, meta));
  if (values.html) writeFileSync(values.html, htmlReport(report, gate.failOn, meta));
  const disagreements = values.expect
    ? accountForExpectations(io, values.expect, pipeline, report)
    : 0;
  return gateFails(report, gate.failOn) || disagreements > 0 ? ExitCode.mismatch : ExitCode.ok;
}

/** Prints how the plan covers a scenario's expect rows; returns the rows the policies contradict. */
function accountForExpectations(
  io: CommandIo,
  file: string,
  pipeline: LocalPipeline,
  report: RunReport,
): number {
  const scenario = loadScenarioFile(file);
  const engine = pipeline.planner.model;
  if (!engine) return 0;
  const coverage = expectationCoverage(
    engine,
    pipeline.planner.plan?.cases ?? [],
    scenario.expectations,
  );
  const byId = new Map(report.cases.map((c) => [c.id, c]));
  let disagreements = 0;
  const lines = coverage.map(({ row, caseId, notGenerated }) => {
    const what = `${row.from.namespace}/${row.from.name} → ${row.to.namespace}/${row.to.name} ${row.port}/${row.protocol} ${row.allowed ? 'allow' : 'deny'}`;
    const probed = caseId ? byId.get(caseId) : undefined;
    if (!probed) return `  -  ${what}: not generated: ${notGenerated ?? 'no case'}\n`;
    if ((probed.expected === 'allow') !== row.allowed) {
      disagreements += 1;
      return `  ✗  ${what}: the policies say ${probed.expected} (case ${probed.id})\n`;
    }
    return `  ${probed.outcome === 'pass' ? '✓' : '✗'}  ${what}: case ${probed.id} ${probed.outcome}\n`;
  });
  const probedCount = coverage.filter((c) => c.caseId).length;
  io.stdout(
    `\nExpectations of ${scenario.name}: ${probedCount} of ${coverage.length} probed, ${coverage.length - probedCount} not generated\n${lines.join('')}`,
  );
  return disagreements;
}

interface Credentials {
  readonly user: string;
  readonly password: string;
}

interface NatsForRun {
  readonly natsUrl: string;
  readonly nats?: PrivateNatsServer;
  /** The run's own user: NATS_USER, or the private server's user for this process alone. */
  readonly credentials?: Credentials | undefined;
  /** The DaemonSet probers' user on the run's own server: a prober's rights, no more. */
  readonly proberCredentials?: Credentials | undefined;
  readonly caFile?: string | undefined;
}

/** NATS_URL, or a private server: on loopback, or (for a DaemonSet) open with passwords. */
async function natsFor(config: CliConfig, mode: ProberMode, storeDir: string): Promise<NatsForRun> {
  if (config.natsUrl)
    return {
      natsUrl: config.natsUrl,
      credentials: config.natsCredentials,
      caFile: config.natsCaFile,
    };
  if (mode !== 'daemonset') {
    const nats = await startPrivateNatsServer({ storeDir });
    return { natsUrl: nats.url, nats };
  }
  // Open to the pods, so every client needs a password; the one the probers get (in a
  // Secret) allows only what a prober does, the run's own never leaves this process.
  const password = (): string => randomBytes(18).toString('base64url');
  const credentials = { user: 'lumen-run', password: password() };
  const proberCredentials = { user: 'prober', password: password() };
  const nats = await startPrivateNatsServer({
    storeDir,
    listen: '0.0.0.0',
    users: [credentials, { ...proberCredentials, permissions: PROBER_PERMISSIONS }],
  });
  return { natsUrl: nats.url, nats, credentials, proberCredentials };
}

/** Starts the DaemonSet and waits for a prober heartbeat from every node. */
async function startDaemonSetProbers(run: {
  readonly io: CommandIo;
  readonly daemonSet: ProberDaemonSet;
  readonly pipeline: LocalPipeline;
  readonly podNatsUrl: string;
  readonly credentials: NatsForRun['proberCredentials'];
  readonly until: (probersLive: Promise<void>) => Promise<void>;
  readonly timeoutMs: number;
}): Promise<void> {
  await run.daemonSet.apply(run.podNatsUrl, run.credentials);
  run.io.stderr(`lumen run: started DaemonSet ${run.daemonSet.namespace}/${run.daemonSet.name}\n`);
  const nodes = await run.daemonSet.nodes();
  await run.until(run.pipeline.untilProbersLive(nodes, run.timeoutMs));
  run.io.stderr(`lumen run: probers live on ${nodes.length} nodes\n`);
}

/** What was asked: one pass, or the removal of earlier runs' leftovers. */
function runKind(values: { once: boolean; cleanup: boolean; kubeconfig?: string | undefined }): {
  kind: 'once' | 'cleanup';
  kubeconfig: string;
} {
  if (values.cleanup && values.once) throw new UsageError('--cleanup and --once go apart');
  if (!values.once && !values.cleanup)
    throw new UsageError(
      'only --once is supported here; for continuous verification install the services',
    );
  if (!values.kubeconfig) throw new UsageError('--kubeconfig FILE is required');
  return { kind: values.cleanup ? 'cleanup' : 'once', kubeconfig: values.kubeconfig };
}

export async function runRun(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options, allowPositionals: false });
  if (values.help) {
    io.stdout(runUsage);
    return ExitCode.ok;
  }
  const { kind, kubeconfig } = runKind(values);
  if (kind === 'cleanup') return cleanUp(values, io);
  const config = cliConfig();
  const { timeoutMs, race, podCidrs, coverage, probeBudget } = runSettings(values);
  const failOn = failOnOption(values['fail-on']);
  const startedAt = new Date();
  const telemetry = startTelemetry(
    config.otlpEndpoint
      ? { service: 'run', exporter: 'otlp', otlpEndpoint: config.otlpEndpoint }
      : { service: 'run', exporter: 'none' },
  );
  const mode = proberMode(values, config.natsUrl);
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-run-'));
  let nats: PrivateNatsServer | undefined;
  let pipeline: LocalPipeline | undefined;
  let daemonSet: ProberDaemonSet | undefined;
  let onSignal = (): void => undefined;
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = (): void => {
      reject(new Error('interrupted: cleaned up and stopped'));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  interrupted.catch(() => undefined);
  try {
    if (mode === 'daemonset') {
      daemonSet = proberDaemonSet(values, values['pod-cidrs'], runExpiry(startedAt, timeoutMs));
      await daemonSet.checkAccess();
      const removed = await daemonSet.removeLeftovers({ all: false, now: startedAt });
      for (const r of removed) io.stderr(`lumen run: removed ${r}, left by an expired run\n`);
    }
    const server = await natsFor(config, mode, join(scratch, 'nats'));
    nats = server.nats;
    const { natsUrl, credentials, caFile } = server;
    pipeline = await LocalPipeline.start({
      kubeconfig,
      natsUrl,
      store: storeLocation(config.databaseUrl, join(scratch, 'lumen.db')),
      planner: { coverage, probeBudget, sweepIntervalMs: ONE_PASS_MS, maxCandidates: 20 },
      scheduler: SCHEDULER_DEFAULTS,
      race,
      localProbers: mode === 'local',
      ...(credentials ? { natsCredentials: credentials } : {}),
      ...(caFile ? { natsCaFile: caFile } : {}),
      podCidrs,
      heartbeatTtlMs: 6000,
      sweepIntervalMs: 0,
      debounceMs: 200,
      log: stderrLog(io),
      ...(values['synthetic-sources']
        ? {
            syntheticSources: {
              namespace: values['synthetic-namespace'],
              image: values['synthetic-image'],
            },
          }
        : {}),
    });
    if (daemonSet)
      await startDaemonSetProbers({
        io,
        daemonSet,
        pipeline,
        podNatsUrl: values['pod-nats-url'] ?? `nats://${hostAddress()}:${new URL(natsUrl).port}`,
        credentials: server.proberCredentials,
        until: (probersLive) => Promise.race([probersLive, interrupted]),
        timeoutMs,
      });
    await pipeline.watch();
    const running = pipeline;
    const stopProgress = showProgress(
      () => running.progress(),
      { write: io.stderr, isTTY: io.stderrIsTTY === true },
      io.stderrIsTTY === true ? 250 : 5000,
    );
    try {
      await Promise.race([pipeline.untilJudged(timeoutMs), interrupted]);
    } finally {
      stopProgress();
    }
    return reportRun(io, pipeline, values, { failOn, startedAt, coverage });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pipeline?.stop();
    await daemonSet?.remove();
    await nats?.stop();
    await telemetry.shutdown();
    rmSync(scratch, { recursive: true, force: true });
  }
}
