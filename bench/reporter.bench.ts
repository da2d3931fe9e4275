/**
 * npm run bench:reporter [-- --record]
 *
 * How fast the reporter judges probe results, the way the service runs it: a private
 * nats-server with JetStream, the reporter's own subscriptions, ReporterCore and CaseStore
 * on PostgreSQL (127.0.0.1:5432, database test, a schema of its own) and on SQLite. 10,000
 * cases are published and stored first; then 200 results of 50 observations each (one
 * per case, all as the case expects), each after the batch it answers (as the scheduler
 * dispatches it), and the clock runs from the first batch published to the last outcome
 * stored.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import {
  TEST_CASE_SUBJECT,
  TestCaseContract,
  silentLog,
  systemClock,
  noTracing,
  type ProbeResult,
  type TestCase,
} from '#lumen/contracts';
import { MessageBus, StreamedBatches, startPrivateNatsServer } from '#lumen/messaging';
import {
  REPORTER_DEFAULTS,
  ReporterCore,
  ResultGate,
  noReporterMetrics,
  subscribeReporter,
} from '#lumen/reporter';
import { CaseStore, type StoreLocation } from '#lumen/store';
import { dispatchAndAnswer, podEndpointFixture, testCaseFixture } from '#lumen/testing';
import { measureMachine, recordSection } from './report.js';

const CASES = 10_000;
const PER_RESULT = 50;
const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

const source = podEndpointFixture('client-0', 'node-1', 1);
const destinations = Array.from({ length: 20 }, (_, i) =>
  podEndpointFixture(`web-${i}`, `node-${(i % 4) + 1}`, 100 + i),
);
const caseIds = Array.from({ length: CASES }, (_, i) => i.toString(16).padStart(16, '0'));

function cases(): TestCase[] {
  return caseIds.map((caseId, i) =>
    testCaseFixture(caseId, [source], [destinations[i % destinations.length]!], {
      generation: 1,
      expected: i % 3 === 0 ? 'deny' : 'allow',
      port: 8000 + (i % 500),
      // Changed long ago: outside the settle window, a first observation decides.
      changedAt: new Date(Date.now() - 3_600_000).toISOString(),
    }),
  );
}

function results(all: readonly TestCase[]): Omit<ProbeResult, 'batchSequence'>[] {
  const out: Omit<ProbeResult, 'batchSequence'>[] = [];
  for (let i = 0; i < all.length; i += PER_RESULT) {
    const chunk = all.slice(i, i + PER_RESULT);
    out.push({
      batchId: `bench-${i}`,
      node: 'node-1',
      attempt: 1,
      source: { namespace: source.namespace, name: source.name },
      startedAt: new Date().toISOString(),
      durationMs: 500,
      observations: chunk.map((c) => ({
        caseId: c.caseId,
        round: c.generation,
        destination: { namespace: c.destinations[0]!.namespace, name: c.destinations[0]!.name },
        ip: c.destinations[0]!.ip,
        port: c.port,
        protocol: c.protocol,
        reachability: c.expected === 'allow' ? 'reachable' : 'blocked',
        basis: c.expected === 'allow' ? 'open (syn-ack)' : 'dropped: filtered (no-response)',
        evidence:
          c.expected === 'allow'
            ? { state: 'open', reason: 'syn-ack' }
            : { state: 'filtered', reason: 'no-response' },
      })),
    });
  }
  return out;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function measure(name: string, location: StoreLocation, scratch: string): Promise<string> {
  const nats = await startPrivateNatsServer({ storeDir: join(scratch, `nats-${name}`) });
  const bus = await MessageBus.connect({ url: nats.url, service: 'bench-reporter' });
  const store = await CaseStore.open(location);
  let judged = 0;
  const reporter = new ReporterCore(
    {
      bus,
      store,
      clock: systemClock,
      log: silentLog,
      tracer: noTracing,
      metrics: noReporterMetrics,
      events: { verdict: () => (judged += 1) },
    },
    REPORTER_DEFAULTS.race,
  );
  const stops = await subscribeReporter(
    bus,
    reporter,
    { prefix: 'bench-', oneShot: true },
    new ResultGate(new StreamedBatches(bus)),
  );
  try {
    const all = cases();
    const casesStarted = performance.now();
    await Promise.all(
      all.map((c) => bus.publish(TEST_CASE_SUBJECT, TestCaseContract, c, { msgId: c.caseId })),
    );
    await until(async () => (await store.rowCounts()).cases === CASES, 'the cases');
    const casesSeconds = (performance.now() - casesStarted) / 1000;
    const started = performance.now();
    // Each result answers a batch dispatched first, as the reporter's gate requires (the
    // dispatch is inside the clock: one more publish per 50 results).
    for (const result of results(all)) await dispatchAndAnswer(bus, result);
    await until(() => Promise.resolve(judged >= CASES), 'the verdicts');
    const seconds = (performance.now() - started) / 1000;
    const outcomes = await store.outcomes();
    const passed = outcomes.filter((o) => o.outcome === 'pass').length;
    if (passed !== CASES) throw new Error(`${name}: ${passed} of ${CASES} cases passed`);
    return `${name.padEnd(11)} ${CASES} cases stored in ${casesSeconds.toFixed(1)} s (${(CASES / casesSeconds).toFixed(0)}/s); ${CASES} results judged in ${seconds.toFixed(1)} s: ${(CASES / seconds).toFixed(0)} per second (budget >= 2000 on PostgreSQL)`;
  } finally {
    for (const stop of stops) await stop();
    await bus.close();
    await store.close();
    await nats.stop();
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-reporter-'));
const schema = `lumen_bench_${randomBytes(4).toString('hex')}`;
try {
  const lines = [
    `${CASES} cases, ${CASES / PER_RESULT} results of ${PER_RESULT} observations, through a private nats-server`,
    await measure('PostgreSQL', { kind: 'postgres', url: POSTGRES_URL, schema }, scratch),
    await measure('SQLite', { kind: 'sqlite', path: join(scratch, 'lumen.db') }, scratch),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('reporter', 'npm run bench:reporter', measureMachine(), lines);
} finally {
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL });
  await admin.initialize();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.destroy();
  rmSync(scratch, { recursive: true, force: true });
}
