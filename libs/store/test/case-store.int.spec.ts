import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import type { AlertEvent } from '#lumen/alerting';
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
      'Retention1795740000000',
      'RotationTally1795750000000',
      'ServicePaths1795760000000',
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

  it('keeps each case’s newest attempts, the evidence of failures and changes for the age, and forgets cases no longer planned', async () => {
    const now = new Date('2026-12-01T12:00:00Z');
    const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
    const kept = '00000000000000c1';
    const gone = '00000000000000c2';
    await store!.upsertCases([
      { ...caseRow(kept), updatedAt: minutesAgo(1) },
      { ...caseRow(gone), updatedAt: minutesAgo(120) },
    ]);
    // Twelve rounds of one attempt each, a minute apart, the oldest first: round 2 failed,
    // round 3 passed again (a change), round 1 was a plain pass 90 minutes ago.
    const observedAt = (round: number) => minutesAgo(round === 1 ? 90 : 40 - round);
    for (let round = 1; round <= 12; round += 1) {
      await store!.recordAttempt({
        caseId: kept,
        round,
        attempt: 1,
        batchId: `b-${round}`,
        node: 'lab-node-1',
        observedAt: observedAt(round),
        reachability: round === 2 ? 'blocked' : 'reachable',
        basis: 'b',
        evidence: null,
        traceId: null,
        sourcePod: null,
        destinationPod: null,
      });
      await store!.setOutcome({
        caseId: kept,
        outcome: round === 2 ? 'fail' : 'pass',
        round,
        decidedAt: observedAt(round),
        reason: 'r',
        attempts: 1,
        enforcementLatencyMs: null,
        traceId: null,
        observed: round === 2 ? 'blocked' : 'reachable',
      });
    }
    await store!.recordAttempt({
      caseId: gone,
      round: 1,
      attempt: 1,
      batchId: 'b-gone',
      node: 'lab-node-1',
      observedAt: minutesAgo(120),
      reachability: 'reachable',
      basis: 'b',
      evidence: null,
      traceId: null,
      sourcePod: null,
      destinationPod: null,
    });
    // A resolved alert and a delivered notification from two hours ago go; a firing
    // alert and its undelivered notification stay, however old.
    const alert = (fingerprint: string, status: 'firing' | 'resolved') =>
      ({
        fingerprint,
        groupKey: 'default/web',
        status,
        severity: 'warning',
        startsAt: minutesAgo(180).toISOString(),
        endsAt: status === 'resolved' ? minutesAgo(120).toISOString() : null,
        content: { caseId: kept },
      }) as unknown as AlertEvent;
    await store!.alerts.recordAlert(
      alert('00000000000000f1', 'resolved'),
      ['default'],
      ['hook'],
      minutesAgo(120),
    );
    await store!.alerts.recordAlert(
      alert('00000000000000f2', 'firing'),
      ['default'],
      ['hook'],
      minutesAgo(180),
    );
    const outbox = await store!.alerts.due(now, 10);
    await store!.alerts.markDelivered(
      outbox.filter((o) => o.event.fingerprint === '00000000000000f1').map((o) => o.id),
      minutesAgo(119),
    );
    const report = await store!.applyRetention(
      { attemptsPerCase: 5, maxAgeMs: 60 * 60_000, batchSize: 2 },
      now,
    );
    // Newest five (rounds 8–12), plus the failure (2) and the change back (3) within the
    // hour; round 1 is the start of the history and older than the hour: gone.
    const rounds: number[] = [];
    for (let round = 1; round <= 12; round += 1)
      if ((await store!.attempts(kept, round)).length > 0) rounds.push(round);
    expect(rounds).toEqual([2, 3, 8, 9, 10, 11, 12]);
    expect((await store!.history(kept)).map((h) => h.outcome)).toEqual(['fail', 'pass']);
    expect(await store!.getCase(gone)).toBeNull();
    expect(await store!.attempts(gone, 1)).toEqual([]);
    // Rounds 1 and 4–7 of the kept case; the earlier tests' cases, last planned on
    // 2026-11-26, are gone with the stale one.
    expect(report).toEqual({ attempts: 5, history: 1, cases: 3, alerts: 2 });
    expect(await store!.alerts.alertState('00000000000000f1')).toBeNull();
    expect(await store!.alerts.alertState('00000000000000f2')).toMatchObject({ status: 'firing' });
    expect((await store!.alerts.due(now, 10)).map((o) => o.event.fingerprint)).toEqual([
      '00000000000000f2',
    ]);
    expect(await store!.getCase('00000000000000a1')).toBeNull();
    // Applying it again finds nothing more to delete.
    expect(
      await store!.applyRetention({ attemptsPerCase: 5, maxAgeMs: 60 * 60_000, batchSize: 2 }, now),
    ).toEqual({ attempts: 0, history: 0, cases: 0, alerts: 0 });
  });

  it('commits every write made at once from many handlers (SQLite has one connection for all)', async () => {
    const ids = Array.from(
      { length: 40 },
      (_, i) => `00000000000001${i.toString(16).padStart(2, '0')}`,
    );
    await store!.upsertCases(ids.map((id) => ({ ...caseRow(id), updatedAt: new Date() })));
    const at = new Date();
    await Promise.all(
      ids.flatMap((caseId, i) => [
        store!.setOutcome({
          caseId,
          outcome: i % 3 === 0 ? 'fail' : 'pass',
          round: 1,
          decidedAt: at,
          reason: 'r',
          attempts: 1,
          enforcementLatencyMs: null,
          traceId: null,
          observed: 'reachable',
        }),
        store!.recordMatrixCoverage(
          {
            generation: i,
            mode: 'budget',
            cells: 1,
            obligations: 1,
            obligationCells: 1,
            rotated: 0,
            probeBudget: null,
            sweepsPerRotation: 1,
            notGeneratedCount: 0,
            notGenerated: [],
          },
          at,
        ),
        store!.recordGeneration('concurrent', i, at),
      ]),
    );
    // Another connection sees all of it: nothing is left in an open transaction.
    const other = await CaseStore.open(location);
    try {
      const outcomes = (await other.outcomes()).filter((o) => ids.includes(o.caseId));
      expect(outcomes).toHaveLength(ids.length);
      for (const caseId of ids) expect(await other.history(caseId)).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  it('adds rotation cells to the tally of their generation from many results at once, and forgets tallies past the age', async () => {
    const now = new Date('2026-12-01T12:00:00Z');
    const counts = { cells: 3, passed: 2, inconclusive: 1, mismatched: 0 };
    await Promise.all(Array.from({ length: 20 }, () => store!.addRotationTally(700, counts, now)));
    await store!.addRotationTally(
      701,
      { cells: 1, passed: 0, inconclusive: 0, mismatched: 1 },
      now,
    );
    const old = new Date(now.getTime() - 2 * 60 * 60_000);
    await store!.addRotationTally(600, counts, old);
    expect(await store!.rotationTallies(10)).toEqual([
      expect.objectContaining({ generation: 701, cells: 1, mismatched: 1 }),
      expect.objectContaining({
        generation: 700,
        cells: 60,
        passed: 40,
        inconclusive: 20,
        mismatched: 0,
      }),
      expect.objectContaining({ generation: 600, cells: 3 }),
    ]);
    const report = await store!.applyRetention(
      { attemptsPerCase: 5, maxAgeMs: 60 * 60_000, batchSize: 2 },
      now,
    );
    expect(report.history).toBeGreaterThanOrEqual(1);
    expect((await store!.rotationTallies(10)).map((t) => t.generation)).toEqual([701, 700]);
  });

  it('records plan generations with increasing ids', async () => {
    const first = await store!.recordGeneration('full sweep', 12, new Date());
    const second = await store!.recordGeneration('policy default/web changed', 3, new Date());
    expect(second).toBeGreaterThan(first);
  });

  it('keeps the Service path a case is probed through, and null for one to a pod', async () => {
    const via = {
      namespace: 'shop',
      name: 'api',
      clusterIP: '10.96.0.12',
      port: 80,
      podCaseId: '00000000000000a1',
      hairpin: false,
    };
    await store!.upsertCases([{ ...caseRow('00000000000000b1'), via }]);
    expect((await store!.getCase('00000000000000b1'))?.via).toEqual(via);
    await store!.upsertCases([caseRow('00000000000000b2')]);
    expect((await store!.getCase('00000000000000b2'))?.via).toBeNull();
    await store!.upsertCases([{ ...caseRow('00000000000000b1'), via: { ...via, hairpin: true } }]);
    expect((await store!.getCase('00000000000000b1'))?.via?.hairpin).toBe(true);
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
