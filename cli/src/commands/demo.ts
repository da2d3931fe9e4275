import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { LabNames, labDown, labFault, labPrerequisites, labUp } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { exampleScenarioDirs, scenarioFiles } from '#lumen/scenario';
import { CaseStore, type AttemptRow } from '#lumen/store';
import { freePort } from '#lumen/host';
import { cliConfig } from '../config.js';
import { lumenRepository } from '../paths.js';
import { ExitCode, type CommandIo } from '../io.js';
import { LAB_POD_CIDR, withLabPipeline } from '../pipeline/lab-verify.js';
import { LocalWebhookReceiver, type ReceivedAlert } from '../pipeline/webhook-receiver.js';
import {
  caseSentence,
  reportFromStore,
  reportTable,
  buildReport,
  type CaseReport,
  type RunReport,
} from '../pipeline/report.js';

export const demoUsage = `Usage: lumen demo [--scenario FILE] [--sweep SECONDS] [--recipes PATTERN]

Lumen end to end on this machine (root, Linux), then everything is torn down:
  1. every recipe of examples/recipes in a lab of its own: planned, probed from real
     pods with nmap, judged (planner, scheduler and reporter in one process, and a
     private nats-server per lab: Lumen's subjects belong to one cluster);
  2. the four services as separate processes (SQLite, a private nats-server unless
     NATS_URL is set) verifying recipe 07 continuously;
  3. the and-as-or fault injected into the lab's enforcer: the regressions Lumen finds,
     and how long it took.

--recipes PATTERN keeps step 1 to the recipes whose file name contains PATTERN.
`;

const REPOSITORY = lumenRepository();
export const RECIPE_07 = 'recipe-07-allow-traffic-from-some-pods-in-another-namespace.yaml';

const options = {
  scenario: { type: 'string' },
  sweep: { type: 'string', default: '10' },
  recipes: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/** Phase 1: every recipe in its own lab, two at a time. */
export interface RecipesRun {
  readonly recipes: number;
  readonly cases: number;
  readonly passed: number;
  /** From the first lab up to the last verdict. */
  readonly ms: number;
}

/** Every recipe in a lab of its own, two at a time, each lab with its own nats-server. */
export async function verifyRecipes(
  io: CommandIo,
  labRoot: string,
  scratch: string,
  pattern = '',
): Promise<RecipesRun> {
  const recipes = scenarioFiles(exampleScenarioDirs(REPOSITORY).recipes).filter((f) =>
    basename(f).includes(pattern),
  );
  if (recipes.length === 0) throw new Error(`no recipe file name contains "${pattern}"`);
  const started = Date.now();
  const reports: [string, RunReport][] = [];
  for (let i = 0; i < recipes.length; i += 2) {
    const batch = await Promise.all(
      recipes
        .slice(i, i + 2)
        .map((file, j) =>
          withLabPipeline(
            { file, labName: `demo-r${i + j}`, labRoot, scratch },
            (pipeline, scenario) =>
              Promise.resolve([
                scenario.name,
                buildReport(pipeline.planner.plan?.cases ?? [], pipeline.finalOutcomes),
              ] as [string, RunReport]),
          ),
        ),
    );
    for (const [name, report] of batch) {
      io.stdout(`\n${name}\n${report.cases.map((c) => `  ${caseSentence(c)}\n`).join('')}`);
      reports.push([name, report]);
    }
  }
  const total = reports.reduce((n, [, r]) => n + r.cases.length, 0);
  const passed = reports.reduce((n, [, r]) => n + r.summary.pass, 0);
  const ms = Date.now() - started;
  io.stdout(
    `\n${recipes.length} recipes: ${passed} of ${total} cases pass, ${(ms / 1000).toFixed(1)} s from lab up to the last verdict\n`,
  );
  return { recipes: recipes.length, cases: total, passed, ms };
}

export interface FaultRun {
  /** From starting the services to the first verdict of every case. */
  readonly firstVerdictsMs: number;
  readonly regressions: number;
  /** From injecting the fault to each regression's verdict. */
  readonly detectionMs: readonly number[];
  /** From injecting the fault to the signed webhook's arrival; undefined when none came. */
  readonly alertMs: number | undefined;
}

interface Services {
  readonly children: ChildProcess[];
  readonly logs: string;
  /** Where the reporter answers: its API and the dashboard at /ui. */
  readonly reporterUrl: string;
}

/** What a caller (the dashboard's browser test) sees of the services while they run. */
export interface DemoObserver {
  /** The reporter's API_TOKENS_FILE contents (tokens the observer uses). */
  readonly apiTokens: string;
  /** After the first verdicts, before the fault. */
  afterFirstVerdicts(reporterUrl: string): Promise<void>;
  /** After the fault's regressions are judged and their alerts have fired. */
  afterRegressions(reporterUrl: string, regressions: readonly CaseReport[]): Promise<void>;
}

export interface DemoRun {
  readonly io: CommandIo;
  readonly labRoot: string;
  readonly natsUrl: string;
  readonly scratch: string;
  readonly sweepMs: number;
  /** The lab's name (default demo): tests running beside the demo's own pick another. */
  readonly labName?: string;
}

async function startServices(
  run: DemoRun,
  kubeconfig: string,
  nodes: readonly string[],
  files: {
    readonly database: string;
    readonly receiversFile: string;
    readonly tokensFile: string | undefined;
  },
): Promise<Services> {
  const { database, receiversFile, tokensFile } = files;
  const { natsUrl, scratch, sweepMs } = run;
  const logs = join(scratch, 'logs');
  mkdirSync(logs, { recursive: true });
  const children: ChildProcess[] = [];
  const start = async (
    name: string,
    file: string,
    env: Record<string, string>,
  ): Promise<number> => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [join(REPOSITORY, 'dist', 'services', name, 'src', 'main.js')],
      {
        env: { PATH: process.env.PATH ?? '', NATS_URL: natsUrl, HTTP_PORT: String(port), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const log = createWriteStream(join(logs, `${file}.log`));
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    children.push(child);
    return port;
  };
  const reporterPort = await start('reporter', 'reporter', {
    SQLITE_PATH: database,
    // The alerting defaults, so that the demo shows what an installation does.
    ALERT_RECEIVERS_FILE: receiversFile,
    ...(tokensFile ? { API_TOKENS_FILE: tokensFile } : {}),
  });
  await start('scheduler', 'scheduler', { HEARTBEAT_TTL_MS: '6000' });
  for (const node of nodes)
    await start('prober', `prober-${node}`, {
      NODE_NAME: node,
      POD_CIDRS: LAB_POD_CIDR,
      HEARTBEAT_TTL_MS: '6000',
    });
  await start('planner', 'planner', {
    KUBECONFIG: kubeconfig,
    SWEEP_INTERVAL_MS: String(sweepMs),
    DEBOUNCE_MS: '200',
  });
  return { children, logs, reporterUrl: `http://127.0.0.1:${reporterPort}` };
}

async function stopServices(services: Services | undefined): Promise<void> {
  if (!services) return;
  await Promise.all(
    services.children.map((child) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((done) => {
            child.once('exit', () => {
              done();
            });
            child.kill('SIGTERM');
          }),
    ),
  );
}

async function storeReport(store: CaseStore): Promise<RunReport> {
  const cases = await store.cases();
  const outcomes = await store.outcomes();
  const last = new Map<string, AttemptRow | undefined>();
  for (const o of outcomes) last.set(o.caseId, (await store.attempts(o.caseId, o.round)).at(-1));
  return reportFromStore(cases, outcomes, last);
}

/** Phase 2 and 3: the services against recipe 07, then the fault. */
export async function servicesAndFault(
  run: DemoRun,
  scenario: string,
  observer?: DemoObserver,
): Promise<FaultRun> {
  const { io, labRoot, scratch, sweepMs } = run;
  const name = run.labName ?? 'demo';
  let services: Services | undefined;
  let store: CaseStore | undefined;
  const webhook = await LocalWebhookReceiver.start();
  try {
    const status = await labUp({
      name,
      root: labRoot,
      scenario,
      nodes: 2,
      faults: [],
      podCidr: LAB_POD_CIDR,
    });
    const nodes = [...new Set(status.pods.map((p) => p.node))].sort();
    const database = join(scratch, 'lumen.db');
    const receiversFile = join(scratch, 'receivers.yaml');
    writeFileSync(receiversFile, webhook.receiversFile(), { mode: 0o600 });
    const tokensFile = observer ? join(scratch, 'api-tokens.yaml') : undefined;
    if (tokensFile && observer) writeFileSync(tokensFile, observer.apiTokens, { mode: 0o600 });
    services = await startServices(run, new LabNames(name, labRoot).kubeconfig, nodes, {
      database,
      receiversFile,
      tokensFile,
    });
    io.stdout(
      `\nServices: planner, scheduler, reporter and ${nodes.length} probers (logs: ${services.logs})\n`,
    );
    const started = Date.now();
    store = await until('the reporter to create its store', 60_000, async () => {
      try {
        return await CaseStore.open({ kind: 'sqlite', path: database });
      } catch {
        return undefined;
      }
    });
    const opened = store;
    const judged = async (after: number): Promise<RunReport | undefined> => {
      const cases = await opened.cases();
      const outcomes = new Map((await opened.outcomes()).map((o) => [o.caseId, o]));
      const done =
        cases.length > 0 &&
        cases.every((c) => {
          const o = outcomes.get(c.caseId);
          return o !== undefined && o.round >= c.generation && o.decidedAt.getTime() > after;
        });
      return done ? storeReport(opened) : undefined;
    };
    const first = await until('the first verdicts', 120_000, () => judged(0));
    const firstVerdictsMs = Date.now() - started;
    io.stdout(
      `First verdicts after ${(firstVerdictsMs / 1000).toFixed(1)} s:\n${reportTable(first)}`,
    );
    await observer?.afterFirstVerdicts(services.reporterUrl);

    await labFault(name, labRoot, 'set', 'and-as-or');
    const injected = Date.now();
    io.stdout(
      `\nInjected the and-as-or fault (a namespaceSelector AND podSelector peer read as OR, as Weave Net 2.5 did).\nWaiting for the next sweep (every ${sweepMs / 1000} s)...\n`,
    );
    const after = await until('verdicts after the fault', 120_000 + sweepMs, () =>
      judged(injected),
    );
    const outcomes = await opened.outcomes();
    const regressions = after.cases.filter((c) => c.outcome === 'fail');
    const decided = outcomes
      .filter((o) => regressions.some((r) => r.id === o.caseId))
      .map((o) => o.decidedAt.getTime() - injected);
    io.stdout(`\n${reportTable(after)}\n`);
    io.stdout(
      regressions.length === 0
        ? 'No regression found.\n'
        : `${regressions.length} regressions (pass → fail), each with its evidence in the store:\n` +
            regressions
              .map(
                (r) =>
                  `  ${caseSentence(r)}  (policy ${r.policies.join(', ')}, trace ${r.traceId})\n`,
              )
              .join('') +
            `Detected ${(Math.min(...decided) / 1000).toFixed(1)}–${(Math.max(...decided) / 1000).toFixed(1)} s after the fault was injected (sweep interval ${sweepMs / 1000} s).\n`,
    );
    const alertMs =
      regressions.length > 0
        ? await alertArrival(io, webhook, injected, regressions.length)
        : undefined;
    await observer?.afterRegressions(services.reporterUrl, regressions);
    return { firstVerdictsMs, regressions: regressions.length, detectionMs: decided, alertMs };
  } finally {
    await webhook.stop();
    await stopServices(services);
    await store?.close();
    await labDown(name, labRoot);
  }
}

/** Waits for the regressions' signed CloudEvent at the local receiver and shows it. */
async function alertArrival(
  io: CommandIo,
  webhook: LocalWebhookReceiver,
  injected: number,
  regressions: number,
): Promise<number | undefined> {
  // Regressions decided apart arrive in webhooks of their own (one group per policy):
  // wait until every one has fired, or 30 s.
  const firingIn = (received: readonly ReceivedAlert[]) =>
    received.flatMap((r) => r.event.data.alerts.filter((a) => a.status === 'firing'));
  await until('an alert for every regression', 30_000, () =>
    Promise.resolve(
      new Set(firingIn(webhook.received).map((a) => a.fingerprint)).size >= regressions
        ? true
        : undefined,
    ),
  ).catch(() => undefined);
  const webhooks = webhook.received.filter((r) =>
    r.event.data.alerts.some((a) => a.status === 'firing'),
  );
  const [first] = webhooks;
  if (!first) {
    io.stdout('No alert reached the webhook receiver within 30 s.\n');
    return undefined;
  }
  const alerts = [...new Map(firingIn(webhooks).map((a) => [a.fingerprint, a])).values()];
  const valid = webhooks.every((r) => r.signatureValid);
  const subjects = [...new Set(webhooks.map((r) => r.event.subject))].join(', ');
  const ms = first.receivedAt - injected;
  io.stdout(
    `\nAlert: ${webhooks.length === 1 ? 'one signed CloudEvents webhook' : `${webhooks.length} signed CloudEvents webhooks`} for policy ${subjects} (${valid ? 'signature valid' : 'signature INVALID'}), the first ${(ms / 1000).toFixed(1)} s after the fault:\n` +
      alerts
        .map((a) => `  ${a.summary}\n    evidence: ${a.evidence}; trace ${a.traceId ?? '-'}\n`)
        .join(''),
  );
  return valid ? ms : undefined;
}

export async function runDemo(args: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args: [...args], options, allowPositionals: false });
  if (values.help) {
    io.stdout(demoUsage);
    return ExitCode.ok;
  }
  const missing = await labPrerequisites();
  if (missing.length > 0) throw new Error(`the lab cannot run here: ${missing.join('; ')}`);
  const config = cliConfig();
  const scenario = values.scenario ?? join(exampleScenarioDirs(REPOSITORY).recipes, RECIPE_07);
  const sweepMs = Math.max(10, Number(values.sweep) || 10) * 1000;
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-demo-'));
  try {
    const recipesRun = await verifyRecipes(io, config.labRoot, scratch, values.recipes);
    // A fresh server for the services: their durable consumers read a stream from its start.
    const faultRun = await withNats(io, config.natsUrl, join(scratch, 'nats-services'), (natsUrl) =>
      servicesAndFault({ io, labRoot: config.labRoot, natsUrl, scratch, sweepMs }, scenario),
    );
    io.stdout('\nEverything Lumen started is stopped and removed.\n');
    return recipesRun.passed === recipesRun.cases &&
      faultRun.regressions > 0 &&
      faultRun.alertMs !== undefined
      ? ExitCode.ok
      : ExitCode.mismatch;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** NATS_URL when set; otherwise a private nats-server for the duration of `use`. */
export async function withNats<T>(
  io: CommandIo,
  natsUrl: string | undefined,
  storeDir: string,
  use: (url: string) => Promise<T>,
): Promise<T> {
  if (natsUrl) return use(natsUrl);
  const nats: PrivateNatsServer = await startPrivateNatsServer({ storeDir });
  io.stdout(`Started a private nats-server with JetStream at ${nats.url}\n`);
  try {
    return await use(nats.url);
  } finally {
    await nats.stop();
  }
}
