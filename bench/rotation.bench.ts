/**
 * npm run bench:rotation [-- --record] [--window SECONDS]
 *
 * The class matrix of the hollow 20,000-pod cluster (bench/hollow-cluster.ts: the stand-ins
 * are named there) rotated through the real planner, scheduler and reporter services,
 * each its own process, over a private nats-server and PostgreSQL, in cell blocks (ADR
 * 0013). The hollow probers are held to 50 probes/s per virtual node (20 ms a probe, one
 * batch at a time per node). The planner plans one sweep at the budget the chart's
 * defaults derive (500 nodes × 50 probes/s × half of a 300 s sweep = 3.75 M probes) and
 * the benchmark follows it from the first block published to the last cell counted.
 * A whole rotation is that, sweeps-per-rotation times.
 */
import { MATRIX_COVERAGE_SUBJECT, type MatrixCoverageReport } from '#lumen/contracts';
import { MessageBus } from '#lumen/messaging';
import {
  HEARTBEAT_TTL_MS,
  NODES,
  cluster,
  until,
  usage,
  withHollowCluster,
} from './hollow-cluster.js';
import { measureMachine, recordSection } from './report.js';

const PROBE_MS = 20;
/** How long the sweep is followed at most (--window SECONDS): then the rate extrapolates it. */
const windowArg = process.argv.indexOf('--window');
const WINDOW_MS = (windowArg > 0 ? Number(process.argv[windowArg + 1]) : 3600) * 1000;
const SWEEP_SECONDS = 300;
const BUDGET = NODES * (1000 / PROBE_MS) * (SWEEP_SECONDS / 2);

await withHollowCluster(
  { perProbeMs: PROBE_MS },
  async ({ nats, db, databaseUrl, kubeconfig, probers, children, start }) => {
    const bus = await MessageBus.connect({ url: nats.url, service: 'bench-rotation' });
    // What crosses NATS, by kind of message (a plain subscription sees every publish).
    const traffic = new Map<string, { messages: number; bytes: number }>();
    let firstBlockAt: number | undefined;
    let coverage: MatrixCoverageReport | undefined;
    const subscription = bus.connection.subscribe('lumen.v1.>', {
      callback: (_error, message) => {
        const kind = message.subject.startsWith('lumen.v1.probe.')
          ? 'probe batches'
          : message.subject.slice('lumen.v1.'.length);
        const seen = traffic.get(kind) ?? { messages: 0, bytes: 0 };
        seen.messages += 1;
        seen.bytes += message.data.length;
        traffic.set(kind, seen);
        if (kind === 'cell-blocks') firstBlockAt ??= performance.now();
        if (message.subject === MATRIX_COVERAGE_SUBJECT && !coverage)
          coverage = JSON.parse(new TextDecoder().decode(message.data)) as MatrixCoverageReport;
      },
    });
    await start('reporter', { DATABASE_URL: databaseUrl });
    await start('scheduler', { HEARTBEAT_TTL_MS: String(HEARTBEAT_TTL_MS) });
    const plannerStarted = performance.now();
    // One sweep at the budget a 300 s sweep derives; no second sweep while it is measured.
    await start('planner', {
      KUBECONFIG: kubeconfig,
      COVERAGE: 'budget',
      PROBE_BUDGET: String(BUDGET),
      SWEEP_INTERVAL_MS: '86400000',
    });
    const planned = await until(() => Promise.resolve(coverage), 'the first plan', 600_000);
    const planSeconds = (performance.now() - plannerStarted) / 1000;
    await db.initialize();
    const tally = async () =>
      (
        await db.query<
          { cells: string; passed: string; inconclusive: string; mismatched: string }[]
        >(
          `SELECT coalesce(sum(cells), 0) AS cells, coalesce(sum(passed), 0) AS passed,
          coalesce(sum(inconclusive), 0) AS inconclusive, coalesce(sum(mismatched), 0) AS mismatched
         FROM rotation_tally`,
        )
      ).map((r) => ({
        cells: Number(r.cells),
        passed: Number(r.passed),
        inconclusive: Number(r.inconclusive),
        mismatched: Number(r.mismatched),
      }))[0]!;
    // Done: the tally stopped growing for 15 s (every block probed, or what remains is
    // lost), or the window is over.
    let counted = -1;
    let countedAt = performance.now();
    const began = firstBlockAt ?? plannerStarted;
    const final = await until(
      async () => {
        const now = await tally();
        if (now.cells !== counted) {
          counted = now.cells;
          countedAt = performance.now();
        }
        const quiet = now.cells > 0 && performance.now() - countedAt > 15_000;
        return quiet || performance.now() - began > WINDOW_MS ? now : undefined;
      },
      'the rotation to be counted',
      WINDOW_MS + 600_000,
    );
    const complete = final.cells >= planned.rotated;
    const followedSeconds = (countedAt - began) / 1000;
    const rate = final.cells / followedSeconds;
    // A sweep not followed to its end is extrapolated at the rate measured.
    const sweepSeconds = complete ? followedSeconds : planned.rotated / rate;
    const count = async (sql: string) => Number((await db.query<{ n: string }[]>(sql))[0]?.n ?? 0);
    const rows = await Promise.all(
      ['rotation_tally', 'cases', 'probe_attempts', 'case_outcomes'].map(async (table) => ({
        table,
        rows: await count(`SELECT count(*) AS n FROM ${table}`),
        bytes: await count(`SELECT pg_total_relation_size('${table}') AS n`),
      })),
    );
    subscription.unsubscribe();
    const sweepsPerRotation = planned.sweepsPerRotation ?? Infinity;
    const rotationMinutes = (sweepsPerRotation * Math.max(SWEEP_SECONDS, sweepSeconds)) / 60;
    const lines = [
      `hollow cluster: ${cluster.pods.length} pods, ${cluster.namespaces.length} namespaces, ${cluster.policies.length} policies on ${NODES} nodes; hollow probers held to ${1000 / PROBE_MS} probes/s per node (${(NODES * 1000) / PROBE_MS} probes/s in all)`,
      `class matrix: ${planned.cells} cells; one sweep at a budget of ${BUDGET} probes: ${planned.obligations} obligations (cases) and ${planned.rotated} rotation cells (blocks); ${sweepsPerRotation} sweeps per rotation`,
      `planner: first plan published ${planSeconds.toFixed(1)} s after it started`,
      `sweep: ${complete ? 'first block published to last cell counted' : `followed for ${followedSeconds.toFixed(0)} s, then extrapolated at that rate`}: ${sweepSeconds.toFixed(1)} s, ${rate.toFixed(0)} cells/s (${(rate / NODES).toFixed(1)} probes/s per node); ${probers.probes()} probes in ${probers.batches()} batches`,
      `counted: ${final.cells} of ${planned.rotated} rotation cells (${final.passed} passed, ${final.inconclusive} inconclusive, ${final.mismatched} mismatched)`,
      `a whole rotation: ${sweepsPerRotation} sweeps × max(${SWEEP_SECONDS} s, the sweep) = ${rotationMinutes.toFixed(0)} min (budget 60 min)`,
      ...[...traffic]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(
          ([kind, t]) =>
            // Every block is sent at once; batches and results only for the cells probed.
            `NATS ${kind}: ${t.messages} messages, ${(t.bytes / 1e6).toFixed(1)} MB (${(t.bytes / Math.max(1, kind === 'cell-blocks' ? planned.rotated : final.cells)).toFixed(0)} bytes per rotation cell ${kind === 'cell-blocks' ? 'sent' : 'counted'})`,
        ),
      ...rows.map((r) => `PostgreSQL ${r.table}: ${r.rows} rows, ${(r.bytes / 1e6).toFixed(1)} MB`),
      ...[...children].map(([name, child]) => {
        const u = usage(child.pid ?? 0);
        return `${name}: ${u.cpuSeconds.toFixed(1)} CPU s, peak RSS ${u.peakRssMb.toFixed(0)} MB (start-up and the sweep)`;
      }),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await bus.close();
    if (process.argv.includes('--record'))
      recordSection('rotation', 'npm run bench:rotation', measureMachine(), lines);
  },
);
