/**
 * npm run bench:api [-- --record]
 *
 * The API's pages over a million stored attempts, on SQLite and on PostgreSQL
 * (127.0.0.1:5432, database test, a schema of its own dropped afterwards): the first
 * page of a case's attempts, a page 900 attempts deep, and pages of the outcomes list,
 * each the median of 20 calls through ResultsQuery (what the API calls).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import type { CaseRecord } from '#lumen/contracts';
import { CaseStore, createDataSource, type StoreLocation } from '#lumen/store';
import { caseRecordFixture, caseSide, explanationSide } from '#lumen/testing';
import { measureMachine, recordSection } from './report.js';

const ATTEMPTS = 1_000_000;
const CASES = 1000;
const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `lumen_bench_${randomBytes(4).toString('hex')}`;
const caseId = (i: number): string => i.toString(16).padStart(16, '0');
const T0 = new Date('2026-11-26T10:00:00Z');

function caseRow(i: number): CaseRecord {
  const namespace = `tenant-${i % 50}`;
  return caseRecordFixture(caseId(i), {
    source: caseSide(namespace, { app: 'client' }),
    destination: caseSide(namespace, { app: 'web' }),
    explanation: {
      ingress: explanationSide([`${namespace}/web`]),
      egress: explanationSide([]),
    },
    rule: { policy: `${namespace}/web`, direction: 'ingress', index: 0 },
    changedAt: T0,
    updatedAt: T0,
  });
}

async function median(work: () => Promise<unknown>, runs = 20): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await work();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] ?? 0;
}

async function measure(label: string, location: StoreLocation, prefix: string): Promise<string[]> {
  const store = await CaseStore.open(location);
  const raw = createDataSource(location);
  await raw.initialize();
  try {
    await store.upsertCases(Array.from({ length: CASES }, (_, i) => caseRow(i)));
    for (let i = 0; i < CASES; i++)
      await store.setOutcome({
        caseId: caseId(i),
        outcome: i % 10 === 0 ? 'fail' : 'pass',
        round: 1,
        decidedAt: T0,
        reason: 'bench',
        attempts: 1,
        enforcementLatencyMs: null,
        traceId: null,
        observed: 'reachable',
      });
    const fill = performance.now();
    const insert = `INSERT INTO ${prefix}probe_attempts (case_id, round, attempt, batch_id, node, observed_at, reachability, basis)`;
    if (location.kind === 'postgres') {
      await raw.query(
        `${insert} SELECT lpad(to_hex(i % ${CASES}), 16, '0'), i / ${CASES} + 1, 1, 'bulk', 'node-1', now(), 'blocked', 'filtered' FROM generate_series(0, ${ATTEMPTS - 1}) AS i`,
      );
      await raw.query(`ANALYZE ${prefix}probe_attempts`);
    } else {
      await raw.query(
        `${insert} WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${ATTEMPTS - 1}) SELECT printf('%016x', i % ${CASES}), i / ${CASES} + 1, 1, 'bulk', 'node-1', '2026-11-26 10:00:00.000', 'blocked', 'filtered' FROM n`,
      );
      await raw.query('ANALYZE');
    }
    const fillSeconds = (performance.now() - fill) / 1000;
    const probe = caseId(CASES - 1);
    const first = await store.results.attempts(probe, undefined, { limit: 100 });
    // A cursor 900 attempts deep: the last page of a case with 1000 attempts.
    let cursor = first?.nextCursor ?? undefined;
    for (let i = 0; i < 8 && cursor; i++)
      cursor =
        (await store.results.attempts(probe, undefined, { limit: 100, cursor }))?.nextCursor ??
        undefined;
    const deepCursor = cursor;
    const firstMs = await median(() => store.results.attempts(probe, undefined, { limit: 100 }));
    const deepMs = await median(() =>
      store.results.attempts(probe, undefined, {
        limit: 100,
        ...(deepCursor ? { cursor: deepCursor } : {}),
      }),
    );
    const scopedMs = await median(() =>
      store.results.attempts(probe, ['tenant-49'], {
        limit: 100,
        ...(deepCursor ? { cursor: deepCursor } : {}),
      }),
    );
    const outcomesMs = await median(() => store.results.outcomes({}, undefined, { limit: 100 }));
    const outcomesScopedMs = await median(() =>
      store.results.outcomes({ outcome: 'fail' }, ['tenant-7'], { limit: 100 }),
    );
    return [
      `${label}: ${ATTEMPTS.toLocaleString('en')} attempts over ${CASES} cases (filled in ${fillSeconds.toFixed(1)} s)`,
      `  a case's first page of 100 attempts:         ${firstMs.toFixed(2)} ms`,
      `  the same case 900 attempts deep (cursor):    ${deepMs.toFixed(2)} ms`,
      `  deep page with a tenant's scope:             ${scopedMs.toFixed(2)} ms`,
      `  outcomes, first page of 100:                 ${outcomesMs.toFixed(2)} ms`,
      `  outcomes, fail in one tenant's scope:        ${outcomesScopedMs.toFixed(2)} ms`,
    ];
  } finally {
    await raw.destroy();
    await store.close();
  }
}

const lines = [
  ...(await measure(
    'SQLite',
    { kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'lumen-bench-api-')), 'lumen.db') },
    '',
  )),
  ...(await measure(
    'PostgreSQL',
    { kind: 'postgres', url: POSTGRES_URL, schema },
    `"${schema}".`,
  ).finally(async () => {
    const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL });
    await admin.initialize();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  })),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (process.argv.includes('--record'))
  recordSection('api', 'npm run bench:api', measureMachine(), lines);
