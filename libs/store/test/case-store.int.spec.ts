import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import type { CaseRecord, NewAttempt, Outcome } from '#lumen/contracts';
import { CaseStore, storeLocation, type StoreLocation } from '#lumen/store';
import { caseRecordFixture, caseSide, explanationSide } from '#lumen/testing';

// PostgreSQL runs on every machine of this project and in CI (127.0.0.1:5432, trust auth,
// database test). Each run works in a schema of its own and drops it afterwards.
const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `lumen_test_${randomBytes(4).toString('hex')}`;

const locations: [string, StoreLocation][] = [
  [
    'SQLite (better-sqlite3)',
    { kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'lumen-store-')), 'lumen.db') },
  ],
  ['PostgreSQL', { kind: 'postgres', url: POSTGRES_URL, schema }],
];

afterAll(async () => {
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL });
  await admin.initialize();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.destroy();
});

const caseRow = (caseId: string): CaseRecord =>
  caseRecordFixture(caseId, {
    source: caseSide('other', { type: 'monitoring' }),
    destination: caseSide('default', { app: 'web' }),
    explanation: { ingress: explanationSide(['default/web']), egress: explanationSide([]) },
    rule: { policy: 'default/web', direction: 'ingress', index: 0 },
    changedAt: new Date('2026-11-26T05:00:00Z'),
    updatedAt: new Date('2026-11-26T05:00:00Z'),
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  });

describe.each(locations)('CaseStore on %s', (_name, location) => {
  let store: CaseStore | undefined;
  beforeAll(async () => {
    store = await CaseStore.open(location);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('creates its schema through migrations, and opening again changes nothing', async () => {
    const migrations = [
      'Initial1795669200000',
      'CaseProbing1795700000000',
      'AttemptPods1795710000000',
      'ResultsAndAlerts1795720000000',
      'MatrixCoverage1795730000000',
    ];
    expect(await store!.appliedMigrations()).toEqual(migrations);
    const again = await CaseStore.open(location);
    expect(await again.appliedMigrations()).toEqual(migrations);
    await again.close();
  });

  it('stores cases and updates them by case id', async () => {
    await store!.upsertCases([caseRow('00000000000000a1'), caseRow('00000000000000a2')]);
    await store!.upsertCases([{ ...caseRow('00000000000000a1'), expected: 'deny', generation: 2 }]);
    expect(await store!.getCase('00000000000000a1')).toMatchObject({
      expected: 'deny',
      generation: 2,
      rule: { policy: 'default/web' },
      source: { labels: { type: 'monitoring' } },
      listenerKnown: true,
      loopback: false,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    expect((await store!.getCase('00000000000000a2'))?.changedAt.toISOString()).toBe(
      '2026-11-26T05:00:00.000Z',
    );
  });

  it('records an attempt once, however often its result is delivered', async () => {
    const attempt: NewAttempt = {
      caseId: '00000000000000a1',
      round: 7,
      attempt: 1,
      batchId: 'b-1',
      node: 'lab-node-1',
      observedAt: new Date('2026-11-26T05:00:02Z'),
      reachability: 'blocked',
      basis: 'dropped: filtered (no-response)',
      evidence: { state: 'filtered', reason: 'no-response' },
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      sourcePod: 'other/monitoring',
      destinationPod: 'default/web',
    };
    expect(await store!.recordAttempt(attempt)).toBe(true);
    expect(await store!.recordAttempt(attempt)).toBe(false);
    await store!.recordAttempt({ ...attempt, attempt: 2, reachability: 'reachable' });
    const stored = await store!.attempts('00000000000000a1', 7);
    expect(stored.map((a) => [a.attempt, a.reachability, a.traceId])).toEqual([
      [1, 'blocked', '4bf92f3577b34da6a3ce929d0e0e4736'],
      [2, 'reachable', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ]);
    expect(stored[0]?.evidence).toEqual({ state: 'filtered', reason: 'no-response' });
    expect(stored[0]).toMatchObject({
      sourcePod: 'other/monitoring',
      destinationPod: 'default/web',
    });
  });

  it('keeps the current outcome per case and its history, and says what it was before', async () => {
    const outcome = (value: Outcome, round: number) => ({
      caseId: '00000000000000a2',
      outcome: value,
      round,
      decidedAt: new Date(Date.UTC(2026, 10, 26, 5, round)),
      reason: 'r',
      attempts: 1,
      enforcementLatencyMs: null,
      traceId: null,
      observed: value === 'pass' ? ('reachable' as const) : ('blocked' as const),
    });
    expect(await store!.setOutcome(outcome('pass', 1))).toEqual({
      applied: true,
      previous: undefined,
    });
    expect(await store!.setOutcome(outcome('fail', 2))).toEqual({
      applied: true,
      previous: 'pass',
    });
    // A redelivered decision for a round already decided, or an older round, is ignored.
    expect(await store!.setOutcome(outcome('pass', 2))).toEqual({
      applied: false,
      previous: 'fail',
    });
    expect(await store!.setOutcome(outcome('pass', 1))).toMatchObject({ applied: false });
    // A later round that confirms the outcome is stored, but is not a change.
    expect(await store!.setOutcome(outcome('fail', 3))).toEqual({
      applied: true,
      previous: 'fail',
    });
    expect((await store!.outcome('00000000000000a2'))?.observed).toBe('blocked');
    expect((await store!.outcomes()).find((o) => o.caseId === '00000000000000a2')?.outcome).toBe(
      'fail',
    );
    expect((await store!.history('00000000000000a2')).map((h) => h.outcome)).toEqual([
      'pass',
      'fail',
    ]);
  });

  it('records plan generations with increasing ids', async () => {
    const first = await store!.recordGeneration('full sweep', 12, new Date());
    const second = await store!.recordGeneration('policy default/web changed', 3, new Date());
    expect(second).toBeGreaterThan(first);
  });
});

describe('storeLocation (DATABASE_URL)', () => {
  it.each([
    [undefined, { kind: 'sqlite', path: '/var/lib/lumen/lumen.db' }],
    ['postgres://u:p@db:5432/lumen', { kind: 'postgres', url: 'postgres://u:p@db:5432/lumen' }],
    ['postgresql://db/lumen', { kind: 'postgres', url: 'postgresql://db/lumen' }],
  ])('%s', (url, location) => {
    expect(storeLocation(url, '/var/lib/lumen/lumen.db')).toEqual(location);
  });

  it('refuses anything else without echoing the password', () => {
    expect(() => storeLocation('mysql://root:secret@db/lumen', '/x')).toThrow(
      'DATABASE_URL must be a postgres:// or postgresql:// URL (got "mysql://***@db/lumen")',
    );
  });
});
