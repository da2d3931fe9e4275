/**
 * npm run bench:retention [-- --record]
 *
 * Whether the store stays flat at the scale of the 20,000-pod plan: 29,142 cases (what
 * bench:policy's planner plans), swept again and again on PostgreSQL (127.0.0.1:5432,
 * database test, a schema of its own) through the reporter's own store calls, with the
 * retention policy applied after every sweep as the reporter applies it. One case in 200
 * fails in a sweep and passes again in the next, so the attempts kept as evidence are
 * exercised too. The sweeps are 5 minutes apart on the store's clock (the chart's default);
 * the run itself takes as long as the writes take.
 */
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { NewAttempt, OutcomeRecord } from '#lumen/contracts';
import { REPORTER_DEFAULTS } from '#lumen/reporter';
import { CaseStore } from '#lumen/store';
import { caseRecordFixture } from '#lumen/testing';
import { measureMachine, recordSection } from './report.js';

const CASES = 29_142;
const SWEEPS = 16;
const SWEEP_MS = 5 * 60_000;
const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const TABLES = ['cases', 'probe_attempts', 'case_outcomes', 'case_outcome_history'] as const;

const schema = `lumen_bench_${randomBytes(4).toString('hex')}`;
const store = await CaseStore.open({ kind: 'postgres', url: POSTGRES_URL, schema });
const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL });
await admin.initialize();

const caseIds = Array.from({ length: CASES }, (_, i) => i.toString(16).padStart(16, '0'));
const start = Date.parse('2026-12-01T00:00:00Z');

async function bytes(): Promise<number> {
  let total = 0;
  for (const table of TABLES) {
    const [row] = await admin.query<{ size: string }[]>(
      `SELECT pg_total_relation_size('"${schema}"."${table}"') AS size`,
    );
    total += Number(row?.size ?? 0);
  }
  return total;
}

const lines: string[] = [
  `${CASES} cases, a sweep every ${SWEEP_MS / 60_000} min (store clock), ${SWEEPS} sweeps; retention: newest ${REPORTER_DEFAULTS.retention.attemptsPerCase} attempts per case, evidence and history ${REPORTER_DEFAULTS.retention.maxAgeMs / 86_400_000} days`,
  'sweep   attempts   history   outcomes   MB (tables and indexes)   write s   retention s   deleted',
];
const sizes: number[] = [];
try {
  for (let sweep = 1; sweep <= SWEEPS; sweep += 1) {
    const now = new Date(start + sweep * SWEEP_MS);
    const failing = (i: number) => i % 200 === sweep % 2;
    const written = performance.now();
    for (let i = 0; i < CASES; i += 1000) {
      const ids = caseIds.slice(i, i + 1000);
      await store.upsertCases(
        ids.map((caseId) => caseRecordFixture(caseId, { generation: sweep, updatedAt: now })),
      );
      await store.recordAttempts(
        ids.map((caseId, k): NewAttempt => ({
          caseId,
          round: sweep,
          attempt: 1,
          batchId: `sweep-${sweep}-${i}`,
          node: `node-${k % 500}`,
          observedAt: now,
          reachability: failing(i + k) ? 'blocked' : 'reachable',
          basis: failing(i + k) ? 'dropped: filtered (no-response)' : 'open (syn-ack)',
          evidence: { state: failing(i + k) ? 'filtered' : 'open', reason: 'syn-ack' },
          traceId: randomBytes(16).toString('hex'),
          sourcePod: 'tenant-1/frontend-0',
          destinationPod: 'tenant-1/api-0',
        })),
      );
      await store.setOutcomes(
        ids.map((caseId, k): OutcomeRecord => ({
          caseId,
          outcome: failing(i + k) ? 'fail' : 'pass',
          round: sweep,
          decidedAt: now,
          reason: failing(i + k) ? 'blocked, expected allow' : 'reachable, as expected',
          attempts: 1,
          enforcementLatencyMs: null,
          traceId: null,
          observed: failing(i + k) ? 'blocked' : 'reachable',
        })),
      );
    }
    const writeSeconds = (performance.now() - written) / 1000;
    const retained = performance.now();
    const deleted = await store.applyRetention(REPORTER_DEFAULTS.retention, now);
    const retentionSeconds = (performance.now() - retained) / 1000;
    const rows = await store.rowCounts();
    const size = await bytes();
    sizes.push(size);
    const line = `${String(sweep).padStart(5)}   ${String(rows.probe_attempts).padStart(8)}   ${String(rows.case_outcome_history).padStart(7)}   ${String(rows.case_outcomes).padStart(8)}   ${(size / 1e6).toFixed(1).padStart(23)}   ${writeSeconds.toFixed(1).padStart(7)}   ${retentionSeconds.toFixed(1).padStart(11)}   ${deleted.attempts} attempts`;
    lines.push(line);
    process.stderr.write(`${line}\n`);
  }
  // Retention first deletes in the sweep after the newest attempts per case are reached.
  const keep = REPORTER_DEFAULTS.retention.attemptsPerCase + 1;
  const steady = sizes.slice(keep);
  const growth = steady.length > 1 ? (steady.at(-1)! - steady[0]!) / (steady.length - 1) : 0;
  const perDay = (86_400_000 / SWEEP_MS) * growth;
  lines.push(
    `once retention applies (sweeps ${keep + 1}-${SWEEPS}): ${(growth / 1e6).toFixed(2)} MB per sweep, ${(perDay / 1e9).toFixed(2)} GB per day at a ${SWEEP_MS / 60_000}-minute sweep (budget <= 1 GB per day): the evidence of failures and the history of changes, which stop growing at ${REPORTER_DEFAULTS.retention.maxAgeMs / 86_400_000} days`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('retention', 'npm run bench:retention', measureMachine(), lines);
} finally {
  await store.close();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.destroy();
}
