/**
 * npm run bench:scale [-- --record]
 *
 * Lumen's control plane on a hollow 20,000-pod cluster, as kubemark does it with hollow
 * nodes. Real: the planner, scheduler and reporter services, each its own process, a
 * private nats-server and PostgreSQL (a database of its own). Stand-ins, and said so: the
 * lab's API emulator serves the bench:policy cluster (20,005 pods, 1,003 namespaces,
 * 5,000 policies) on 500 nodes whose pods do not run; hollow probers (in this process)
 * heartbeat for every node, take the real probe batches from JetStream and answer them
 * from the reference semantics (the policy engine, checked against the reference
 * evaluator by the property tests), with a probe cost: 20 ms per batch and 300 ms when a
 * target is dropped (nmap waits for silence). The planner plans the obligations
 * (`COVERAGE=obligations`); the sweep runs from the first case published to the last
 * outcome stored.
 */
import { MATRIX_COVERAGE_SUBJECT } from '#lumen/contracts';
import { ObjectStore } from '#lumen/lab';
import { MessageBus } from '#lumen/messaging';
import { podKey, type Pod } from '#lumen/policy';
import {
  BATCH_MS,
  DROP_MS,
  HEARTBEAT_TTL_MS,
  NODES,
  cluster,
  createPod,
  engine,
  kind,
  nodeOf,
  podsByKey,
  until,
  usage,
  withHollowCluster,
} from './hollow-cluster.js';
import { measureMachine, recordSection } from './report.js';

/** The pod now standing in each of the cluster's places (churn replaces them). */
const current: Pod[] = [...cluster.pods];
const CHURN_PER_SECOND = 100;
const CHURN_SECONDS = 60;
const DEBOUNCE_MS = 1000;

/**
 * Rolling updates: every second, `perSecond` pods are replaced by pods of a new
 * pod-template-hash (a new name, the same node and IP), for `seconds`. The hollow probers'
 * model follows, so that they answer for the new pods. Returns when the churn ended.
 */
async function churn(store: ObjectStore, perSecond: number, seconds: number): Promise<number> {
  const podType = kind('Pod');
  let next = 0;
  for (let second = 1; second <= seconds; second += 1) {
    const tick = performance.now();
    for (let k = 0; k < perSecond; k += 1) {
      const index = next++ % cluster.pods.length;
      const old = current[index]!;
      const replacement: Pod = {
        ...old,
        name: `${cluster.pods[index]!.name}-r${second}`,
        labels: { ...old.labels, 'pod-template-hash': `r${second}` },
      };
      store.delete(podType, old.namespace, old.name);
      createPod(store, replacement, nodeOf(index));
      podsByKey.set(podKey(replacement), replacement);
      engine.setPod(replacement);
      current[index] = replacement;
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, 1000 - (performance.now() - tick))),
    );
  }
  return performance.now();
}

await withHollowCluster(
  {},
  async ({ nats, db, databaseUrl, kubeconfig, objects, seedSeconds, probers, children, start }) => {
    await start('reporter', { DATABASE_URL: databaseUrl });
    await start('scheduler', { HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS) });
    const plannerStarted = performance.now();
    await start('planner', {
      KUBECONFIG: kubeconfig,
      COVERAGE: 'obligations',
      SWEEP_INTERVAL_MS: '86400000',
      DEBOUNCE_MS: String(DEBOUNCE_MS),
    });
    const bus = await MessageBus.connect({ url: nats.url, service: 'bench-scale' });
    const jsm = await bus.connection.jetstreamManager();
    const streamState = async (name: string) => (await jsm.streams.info(name)).state;
    const firstCaseSeconds = await until(async () => {
      const state = await streamState('LUMEN_V1_CASES').catch(() => undefined);
      // Sequences, not messages: a work stream lets a message go once consumed (ADR 0019).
      return state && state.last_seq > 0 ? (performance.now() - plannerStarted) / 1000 : undefined;
    }, 'the first case');
    const sweepStarted = performance.now();
    // Published: the case stream stops growing for 5 s.
    let last = -1;
    let stableSince = performance.now();
    const published = await until(async () => {
      const { last_seq: messages } = await streamState('LUMEN_V1_CASES');
      if (messages !== last) {
        last = messages;
        stableSince = performance.now();
        return undefined;
      }
      return performance.now() - stableSince > 5000 ? messages : undefined;
    }, 'the plan to be published');
    const publishSeconds = (performance.now() - sweepStarted - 5000) / 1000;
    await db.initialize();
    const count = async (sql: string) => Number((await db.query<{ n: string }[]>(sql))[0]?.n ?? 0);
    // Done: every stored case has an outcome, and no case came in the last 2 s.
    let casesSeen = -1;
    let casesStableSince = performance.now();
    const cases = await until(async () => {
      const stored = await count('SELECT count(*) AS n FROM cases');
      if (stored !== casesSeen) {
        casesSeen = stored;
        casesStableSince = performance.now();
      }
      const decided = await count('SELECT count(*) AS n FROM case_outcomes');
      return stored > 0 && decided >= stored && performance.now() - casesStableSince > 2000
        ? stored
        : undefined;
    }, 'every case to have an outcome');
    // The 2 s of quiet that said so are not part of the sweep.
    const sweepSeconds = (performance.now() - sweepStarted - 2000) / 1000;
    const sweepBatches = probers.batches();
    const outcomes = await db.query<{ outcome: string; n: string }[]>(
      'SELECT outcome, count(*) AS n FROM case_outcomes GROUP BY outcome ORDER BY outcome',
    );
    const streams = await Promise.all(
      ['LUMEN_V1_CASES', 'LUMEN_V1_PROBES', 'LUMEN_V1_RESULTS'].map(
        async (name) => [name, await streamState(name)] as const,
      ),
    );
    const rows = await Promise.all(
      ['cases', 'probe_attempts', 'case_outcomes', 'case_outcome_history'].map(async (table) => ({
        table,
        rows: await count(`SELECT count(*) AS n FROM ${table}`),
        bytes: await count(`SELECT pg_total_relation_size('${table}') AS n`),
      })),
    );
    // Churn: the planner's plans (each ends with a coverage report) while pods are replaced.
    const before = new Map([...children].map(([name, child]) => [name, usage(child.pid ?? 0)]));
    const reports: number[] = [];
    const subscription = bus.connection.subscribe(MATRIX_COVERAGE_SUBJECT, {
      callback: () => reports.push(performance.now()),
    });
    const churnStarted = performance.now();
    const churnEnded = await churn(objects, CHURN_PER_SECOND, CHURN_SECONDS);
    await until(
      () =>
        Promise.resolve(
          performance.now() - Math.max(churnEnded, reports.at(-1) ?? 0) > 10_000 ? true : undefined,
        ),
      'the planner to settle after the churn',
    );
    subscription.unsubscribe();
    const during = reports.filter((t) => t > churnStarted && t <= churnEnded);
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    const firstPlan = during[0] === undefined ? undefined : during[0] - churnStarted;
    const settled = (reports.at(-1) ?? churnEnded) - churnEnded;
    const churnCpu = [...children].map(([name, child]) => {
      const now = usage(child.pid ?? 0);
      return `${name} ${(now.cpuSeconds - (before.get(name)?.cpuSeconds ?? 0)).toFixed(1)} CPU s, peak RSS ${now.peakRssMb.toFixed(0)} MB`;
    });
    const lines = [
      `hollow cluster: ${cluster.pods.length} pods, ${cluster.namespaces.length} namespaces, ${cluster.policies.length} policies on ${NODES} nodes (API emulator seeded in ${seedSeconds.toFixed(1)} s); hollow probe cost ${BATCH_MS} ms a batch, +${DROP_MS} ms when one target is dropped`,
      `planner: first case ${firstCaseSeconds.toFixed(1)} s after start (watch, model, plan); ${published} cases published in ${publishSeconds.toFixed(1)} s (${(published / Math.max(0.1, publishSeconds)).toFixed(0)}/s)`,
      `sweep: first case published to last outcome stored: ${sweepSeconds.toFixed(1)} s (budget 60 s); ${sweepBatches} batches probed, ${(cases / sweepSeconds).toFixed(0)} cases/s through the pipeline`,
      `outcomes: ${outcomes.map((o) => `${o.n} ${o.outcome}`).join(', ')}`,
      ...streams.map(
        ([name, state]) =>
          `NATS ${name}: ${state.last_seq} messages published, ${state.messages} held at the end (${(state.bytes / 1e6).toFixed(1)} MB)`,
      ),
      ...rows.map((r) => `PostgreSQL ${r.table}: ${r.rows} rows, ${(r.bytes / 1e6).toFixed(1)} MB`),
      ...[...before].map(
        ([name, u]) =>
          `${name}: ${u.cpuSeconds.toFixed(1)} CPU s, peak RSS ${u.peakRssMb.toFixed(0)} MB (start-up and the sweep)`,
      ),
      `churn: ${CHURN_PER_SECOND} pods replaced per second for ${CHURN_SECONDS} s (rolling updates: new pod-template-hash, new classes); planner debounce ${DEBOUNCE_MS} ms`,
      `  plans published during the churn: ${during.length}; first ${firstPlan === undefined ? 'never' : `${(firstPlan / 1000).toFixed(1)} s`} after it began; longest gap between plans ${gaps.length > 0 ? `${(Math.max(...gaps) / 1000).toFixed(1)} s` : 'n/a'}; last plan ${(settled / 1000).toFixed(1)} s after the churn ended`,
      `  during the churn: ${churnCpu.join('; ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await bus.close();
    if (process.argv.includes('--record'))
      recordSection('scale', 'npm run bench:scale', measureMachine(), lines);
  },
);
