/**
 * The API's reads and the alert outbox on real SQLite and PostgreSQL: tenant scoping on
 * every query, keyset pages over a million attempts, and an outbox that survives a reopen.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { alertFingerprint, type AlertEvent } from '#lumen/alerting';
import { CursorError, type CaseRecord, type MatrixCoverageReport } from '#lumen/contracts';
import { CaseStore, createDataSource, type StoreLocation } from '#lumen/store';
import { caseRecordFixture, caseSide, explanationSide } from '#lumen/testing';

const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `lumen_results_${randomBytes(4).toString('hex')}`;
const MILLION = 1_000_000;
const BULK_CASES = 1000;

const locations: [string, StoreLocation, string][] = [
  [
    'SQLite',
    { kind: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'lumen-results-')), 'lumen.db') },
    '',
  ],
  ['PostgreSQL', { kind: 'postgres', url: POSTGRES_URL, schema }, `"${schema}".`],
];

afterAll(async () => {
  const admin = new DataSource({ type: 'postgres', url: POSTGRES_URL });
  await admin.initialize();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.destroy();
});

const T0 = new Date('2026-11-26T10:00:00Z');

function caseRow(
  caseId: string,
  from: string,
  to: string,
  extra: Partial<CaseRecord> = {},
): CaseRecord {
  return caseRecordFixture(caseId, {
    source: caseSide(from, { app: `${from}-client` }),
    destination: caseSide(to, { app: `${to}-server` }),
    explanation: { ingress: explanationSide([`${to}/web`]), egress: explanationSide([]) },
    rule: { policy: `${to}/web`, direction: 'ingress', index: 0 },
    changedAt: T0,
    updatedAt: T0,
    ...extra,
  });
}

// a1: tenant-b → tenant-a (visible to both tenants); a2: tenant-a → tenant-a;
// c1: tenant-c → tenant-c (visible to neither a nor b).
const seeded = {
  a1: '00000000000000a1',
  a2: '00000000000000a2',
  c1: '00000000000000c1',
};

describe.each(locations)('ResultsQuery and AlertOutbox on %s', (_name, location, prefix) => {
  let store: CaseStore;
  let raw: DataSource;

  beforeAll(async () => {
    store = await CaseStore.open(location);
    raw = createDataSource(location);
    await raw.initialize();
    await store.upsertCases([
      caseRow(seeded.a1, 'tenant-b', 'tenant-a'),
      caseRow(seeded.a2, 'tenant-a', 'tenant-a', {
        expected: 'deny',
        reason: 'near-miss-namespace',
      }),
      caseRow(seeded.c1, 'tenant-c', 'tenant-c'),
    ]);
    await store.recordPolicyInventory(5, [
      { policy: 'tenant-a/web', ingress: [0, 1], egress: [] },
      { policy: 'tenant-c/web', ingress: [0], egress: [] },
    ]);
    for (const [i, id] of Object.values(seeded).entries()) {
      await store.recordAttempt({
        caseId: id,
        round: 1,
        attempt: 1,
        batchId: 'b1',
        node: 'node-1',
        observedAt: new Date(T0.getTime() + 1000),
        reachability: id === seeded.a2 ? 'blocked' : 'reachable',
        basis: 'open',
        evidence: { state: 'open', reason: 'syn-ack' },
        traceId: `${'0'.repeat(31)}${i}`,
        sourcePod: null,
        destinationPod: null,
      });
      await store.setOutcome({
        caseId: id,
        outcome: id === seeded.c1 ? 'fail' : 'pass',
        round: 1,
        decidedAt: new Date(T0.getTime() + 2000 + i * 60_000),
        reason: 'seeded',
        attempts: 1,
        enforcementLatencyMs: 1000 * (i + 1),
        traceId: null,
        observed: 'reachable',
      });
    }
  });

  afterAll(async () => {
    await raw.destroy();
    await store.close();
  });

  const ids = (items: readonly { caseId: string }[]): string[] => items.map((i) => i.caseId);

  it('scopes outcomes to cases whose source or destination is in the token’s namespaces', async () => {
    const page = { limit: 100 };
    expect(ids((await store.results.outcomes({}, undefined, page)).items)).toEqual([
      seeded.a1,
      seeded.a2,
      seeded.c1,
    ]);
    expect(ids((await store.results.outcomes({}, ['tenant-a'], page)).items)).toEqual([
      seeded.a1,
      seeded.a2,
    ]);
    expect(ids((await store.results.outcomes({}, ['tenant-b'], page)).items)).toEqual([seeded.a1]);
    // A filter never widens the scope.
    for (const filter of [
      { namespace: 'tenant-c' },
      { policy: 'tenant-c/web' },
      { outcome: 'fail' },
    ])
      expect((await store.results.outcomes(filter, ['tenant-b'], page)).items).toEqual([]);
    expect((await store.results.outcomes({}, [], page)).items).toEqual([]);
  });

  it('filters by namespace, policy, outcome and time', async () => {
    const page = { limit: 100 };
    const all = undefined;
    expect(ids((await store.results.outcomes({ namespace: 'tenant-b' }, all, page)).items)).toEqual(
      [seeded.a1],
    );
    expect(
      ids((await store.results.outcomes({ policy: 'tenant-c/web' }, all, page)).items),
    ).toEqual([seeded.c1]);
    expect(ids((await store.results.outcomes({ outcome: 'fail' }, all, page)).items)).toEqual([
      seeded.c1,
    ]);
    const since = new Date(T0.getTime() + 60_000);
    const until = new Date(T0.getTime() + 90_000);
    expect(ids((await store.results.outcomes({ since, until }, all, page)).items)).toEqual([
      seeded.a2,
    ]);
  });

  it('answers one case, with explanation, history and attempts, only inside the scope', async () => {
    const detail = await store.results.caseDetail(seeded.a1, ['tenant-b'], { limit: 10 });
    expect(detail?.case).toMatchObject({
      caseId: seeded.a1,
      explanation: { ingress: { policies: ['tenant-a/web'] } },
      policy: 'tenant-a/web',
    });
    expect(detail?.outcome).toMatchObject({ outcome: 'pass', round: 1 });
    expect(detail?.history.map((h) => h.outcome)).toEqual(['pass']);
    expect(detail?.attempts.items[0]).toMatchObject({
      reachability: 'reachable',
      evidence: { state: 'open', reason: 'syn-ack' },
      traceId: `${'0'.repeat(31)}0`,
    });
    expect(await store.results.caseDetail(seeded.c1, ['tenant-a'], { limit: 10 })).toBeNull();
    expect(await store.results.attempts(seeded.c1, ['tenant-a'], { limit: 10 })).toBeNull();
  });

  it('summarises, measures coverage and latency within the scope', async () => {
    expect(await store.results.summary(undefined)).toMatchObject({
      cases: 3,
      byOutcome: { pass: 2, fail: 1 },
    });
    expect(await store.results.summary(['tenant-b'])).toMatchObject({
      cases: 1,
      byOutcome: { pass: 1, fail: 0 },
      undecided: 0,
    });
    const coverage = await store.results.coverage(['tenant-a']);
    expect(coverage.map((c) => [c.policy, c.rules, c.covered])).toEqual([['tenant-a/web', 2, 1]]);
    expect(coverage[0]?.perRule[0]).toEqual({
      direction: 'ingress',
      index: 0,
      allowVerified: true,
      denyVerified: true,
    });
    expect(await store.results.coverage(['tenant-b'])).toEqual([]);
    expect(await store.results.latency(undefined)).toMatchObject({
      count: 3,
      minMs: 1000,
      maxMs: 3000,
      p50Ms: 2000,
    });
    expect(await store.results.latency(['tenant-c'])).toMatchObject({ count: 1, minMs: 3000 });
  });

  it('joins the planner’s newest matrix with the verified cells, and scopes both', async () => {
    expect(await store.results.matrix(undefined)).toBeNull();
    const report = (generation: number, cells: number): MatrixCoverageReport => ({
      generation,
      mode: 'budget',
      cells,
      obligations: 6,
      obligationCells: 5,
      rotated: 4,
      probeBudget: 10,
      sweepsPerRotation: 2,
      notGeneratedCount: 3,
      notGenerated: [
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-a/web', direction: 'ingress', index: 0 },
          why: 'a',
        },
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-c/db', direction: 'ingress', index: 1 },
          why: 'c',
        },
        { reason: 'unlisted-source', why: 'no rule' },
      ],
      notJudged: [
        {
          group: 'cilium.io',
          kind: 'CiliumNetworkPolicy',
          namespace: 'tenant-a',
          name: 'l7',
          cases: 4,
        },
        {
          group: 'cilium.io',
          kind: 'CiliumNetworkPolicy',
          namespace: 'tenant-c',
          name: 'l4',
          cases: 2,
        },
        { group: 'crd.projectcalico.org', kind: 'GlobalNetworkPolicy', name: 'deny', cases: 0 },
      ],
    });
    await store.recordMatrixCoverage(report(5, 12), T0);
    await store.recordMatrixCoverage(report(4, 99), T0);
    expect(await store.results.matrix(undefined)).toEqual({
      generation: 5,
      mode: 'budget',
      cells: 12,
      cellsVerified: 3,
      rotation: null,
      families: null,
      obligations: 6,
      probeBudget: 10,
      sweepsPerRotation: 2,
      notGenerated: [
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-a/web', direction: 'ingress', index: 0 },
          why: 'a',
        },
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-c/db', direction: 'ingress', index: 1 },
          why: 'c',
        },
        { reason: 'unlisted-source', rule: null, why: 'no rule' },
      ],
      notJudged: [
        {
          group: 'cilium.io',
          kind: 'CiliumNetworkPolicy',
          namespace: 'tenant-a',
          name: 'l7',
          cases: 4,
        },
        {
          group: 'cilium.io',
          kind: 'CiliumNetworkPolicy',
          namespace: 'tenant-c',
          name: 'l4',
          cases: 2,
        },
        {
          group: 'crd.projectcalico.org',
          kind: 'GlobalNetworkPolicy',
          namespace: null,
          name: 'deny',
          cases: 0,
        },
      ],
    });
    expect(await store.results.matrix(['tenant-a'])).toEqual({
      generation: 5,
      mode: 'budget',
      cells: null,
      cellsVerified: 2,
      rotation: null,
      families: null,
      obligations: null,
      probeBudget: null,
      sweepsPerRotation: 2,
      notGenerated: [
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-a/web', direction: 'ingress', index: 0 },
          why: 'a',
        },
      ],
      // Its own namespace's objects only: not another tenant's, nor cluster-scoped ones.
      notJudged: [
        {
          group: 'cilium.io',
          kind: 'CiliumNetworkPolicy',
          namespace: 'tenant-a',
          name: 'l7',
          cases: 4,
        },
      ],
    });
  });

  it('counts the last rotation’s block cells as verified, for an unscoped caller only', async () => {
    // The newest plan (generation 5, from the test above) rotates in 2 sweeps: the tallies
    // of the two newest sweeps count, the older one belongs to the rotation before.
    const at = (minute: number): Date => new Date(T0.getTime() + minute * 60_000);
    await store.addRotationTally(3, { cells: 5, passed: 5, inconclusive: 0, mismatched: 0 }, at(1));
    await store.addRotationTally(4, { cells: 4, passed: 2, inconclusive: 1, mismatched: 1 }, at(2));
    await store.addRotationTally(5, { cells: 3, passed: 3, inconclusive: 0, mismatched: 0 }, at(5));
    await store.addRotationTally(4, { cells: 1, passed: 1, inconclusive: 0, mismatched: 0 }, at(3));
    const whole = await store.results.matrix(undefined);
    expect(whole?.rotation).toEqual({
      sweeps: 2,
      cells: 8,
      passed: 6,
      inconclusive: 1,
      mismatched: 1,
      since: at(2).toISOString(),
      until: at(5).toISOString(),
    });
    // 3 stored cells and 6 passed in blocks, held to the matrix's 12 cells.
    expect(whole?.cellsVerified).toBe(9);
    const scoped = await store.results.matrix(['tenant-a']);
    expect(scoped).toMatchObject({ rotation: null, cellsVerified: 2 });
    await store.addRotationTally(6, { cells: 9, passed: 9, inconclusive: 0, mismatched: 0 }, at(9));
    expect((await store.results.matrix(undefined))?.cellsVerified).toBe(12);
  });

  it('reads a stored report of a planner that did not yet name unmodelled policies', async () => {
    const older: MatrixCoverageReport = {
      generation: 7,
      mode: 'full',
      cells: 3,
      obligations: 0,
      obligationCells: 0,
      rotated: 3,
      probeBudget: null,
      sweepsPerRotation: 1,
      notGeneratedCount: 0,
      notGenerated: [],
    };
    expect('notJudged' in older).toBe(false);
    await store.recordMatrixCoverage(older, T0);
    expect(await store.results.matrix(undefined)).toMatchObject({ generation: 7, notJudged: [] });
  });

  it('refuses a cursor that is not one of its own', async () => {
    await expect(
      store.results.outcomes({}, undefined, { limit: 1, cursor: 'bm90LWEtY3Vyc29y' }),
    ).rejects.toThrow(CursorError);
    const first = await store.results.outcomes({}, undefined, { limit: 1 });
    // An outcomes cursor is refused by the attempts endpoint.
    await expect(
      store.results.attempts(seeded.a1, undefined, { limit: 1, cursor: first.nextCursor! }),
    ).rejects.toThrow(CursorError);
  });

  it('keeps alerts in the outbox until delivered, across a reopen', async () => {
    const fingerprint = alertFingerprint(seeded.c1);
    const event = {
      fingerprint,
      groupKey: 'tenant-c/web',
      status: 'firing',
      severity: 'warning',
      startsAt: T0.toISOString(),
      endsAt: null,
      content: { caseId: seeded.c1 },
    } as unknown as AlertEvent;
    await store.alerts.recordAlert(event, ['tenant-c'], ['hook', 'other'], T0);
    expect(await store.alerts.alertState(fingerprint)).toEqual({ status: 'firing', startsAt: T0 });
    const due = await store.alerts.due(T0, 10);
    expect(due.map((d) => d.receiver)).toEqual(['hook', 'other']);
    await store.alerts.markFailed([due[0]!.id], 'HTTP 503', new Date(T0.getTime() + 1000));
    await store.alerts.markDelivered([due[1]!.id], T0);
    expect((await store.alerts.due(T0, 10)).length).toBe(0);
    expect(await store.results.summary(['tenant-c'])).toMatchObject({ firingAlerts: 1 });
    expect(await store.results.summary(['tenant-a'])).toMatchObject({ firingAlerts: 0 });
    const reopened = await CaseStore.open(location);
    const later = await reopened.alerts.due(new Date(T0.getTime() + 1000), 10);
    expect(later.map((d) => [d.receiver, d.attempts, d.event.fingerprint])).toEqual([
      ['hook', 1, fingerprint],
    ]);
    expect(await reopened.alerts.outboxCounts()).toEqual([
      { receiver: 'hook', pending: 1, failing: 1 },
    ]);
    await reopened.close();
  });

  it('draws the namespace matrix, a pair class by class, and the firing regressions, within the scope', async () => {
    // [source, destination, allow, deny, pass, fail, flaky, inconclusive, unverified]
    const whole = await store.results.namespaceMatrix(undefined);
    expect(whole.namespaces).toEqual(['tenant-a', 'tenant-b', 'tenant-c']);
    expect(whole.truncated).toBe(false);
    expect([...whole.cells].sort()).toEqual(
      [
        [1, 0, 1, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0, 0, 0],
        [2, 2, 1, 0, 0, 1, 0, 0, 0],
      ].sort(),
    );
    // tenant-b sees the one pair it is an end of; tenant-c's pair is not there at all.
    const tenantB = await store.results.namespaceMatrix(['tenant-b']);
    expect(tenantB).toEqual({
      namespaces: ['tenant-a', 'tenant-b'],
      cells: [[1, 0, 1, 0, 1, 0, 0, 0, 0]],
      truncated: false,
    });

    const pair = await store.results.classMatrix('tenant-b', 'tenant-a', undefined);
    expect(pair?.sourceClasses).toEqual([
      { id: expect.stringMatching(/^[0-9a-f]{12}$/), labels: { app: 'tenant-b-client' } },
    ]);
    expect(pair?.cells).toEqual([
      expect.objectContaining({
        allow: 1,
        pass: 1,
        cases: [
          { caseId: seeded.a1, port: 80, protocol: 'TCP', expected: 'allow', outcome: 'pass' },
        ],
      }),
    ]);
    // To tenant-a, tenant-b's end is one class without labels.
    const seenByA = await store.results.classMatrix('tenant-b', 'tenant-a', ['tenant-a']);
    expect(seenByA?.sourceClasses).toEqual([{ id: '*', labels: null }]);
    expect(seenByA?.destinationClasses).toEqual([
      { id: expect.stringMatching(/^[0-9a-f]{12}$/), labels: { app: 'tenant-a-server' } },
    ]);
    expect(await store.results.classMatrix('tenant-c', 'tenant-c', ['tenant-a'])).toBeNull();
    expect(await store.results.classMatrix('tenant-x', 'tenant-a', undefined)).toBeNull();

    // The outbox test left c1's alert firing.
    const firing = await store.results.regressions(undefined);
    expect(firing.items).toEqual([
      {
        caseId: seeded.c1,
        fingerprint: alertFingerprint(seeded.c1),
        policy: 'tenant-c/web',
        severity: 'warning',
        startsAt: T0.toISOString(),
        expected: 'allow',
        sourceNamespace: 'tenant-c',
        destinationNamespace: 'tenant-c',
        port: 80,
        protocol: 'TCP',
      },
    ]);
    expect((await store.results.regressions(['tenant-c'], 'tenant-c/web')).items).toHaveLength(1);
    expect((await store.results.regressions(undefined, 'tenant-a/web')).items).toEqual([]);
    expect((await store.results.regressions(['tenant-a'])).items).toEqual([]);
  });

  describe('with a million attempts', () => {
    const bulkId = (i: number): string => `b${i.toString(16).padStart(15, '0')}`;
    const probe = bulkId(BULK_CASES - 1);

    beforeAll(async () => {
      await store.upsertCases(
        Array.from({ length: BULK_CASES }, (_, i) => caseRow(bulkId(i), 'bulk-src', 'bulk-dst')),
      );
      const postgres = location.kind === 'postgres';
      const insert = `INSERT INTO ${prefix}probe_attempts (case_id, round, attempt, batch_id, node, observed_at, reachability, basis)`;
      if (postgres) {
        await raw.query(
          `${insert} SELECT 'b' || lpad(to_hex(i % ${BULK_CASES}), 15, '0'), i / ${BULK_CASES} + 1, 1, 'bulk', 'node-1', now(), 'blocked', 'filtered' FROM generate_series(0, ${MILLION - 1}) AS i`,
        );
        await raw.query(`ANALYZE ${prefix}probe_attempts`);
      } else {
        await raw.query(
          `${insert} WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${MILLION - 1}) SELECT printf('b%015x', i % ${BULK_CASES}), i / ${BULK_CASES} + 1, 1, 'bulk', 'node-1', '2026-11-26 10:00:00.000', 'blocked', 'filtered' FROM n`,
        );
        await raw.query('ANALYZE');
      }
    });

    it('holds them', async () => {
      const [row] = await raw.query<{ n: string | number }[]>(
        `SELECT COUNT(*) AS n FROM ${prefix}probe_attempts`,
      );
      expect(Number(row?.n)).toBeGreaterThanOrEqual(MILLION);
    });

    it('pages a case’s attempts newest first, every attempt once, to the end', async () => {
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.results.attempts(probe, ['bulk-dst'], {
          limit: 100,
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page!.items.map((a) => a.id));
        cursor = page!.nextCursor ?? undefined;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(MILLION / BULK_CASES / 100);
      expect(new Set(seen).size).toBe(MILLION / BULK_CASES);
      expect(seen).toEqual([...seen].sort((a, b) => b - a));
    });

    it('finds a deep page through the (case_id, id) index, never a scan of the table', async () => {
      const page = await store.results.attempts(probe, undefined, { limit: 500 });
      const deep = page!.items[page!.items.length - 1]!.id;
      const plan = await store.results.explainAttemptsPage(probe, deep);
      if (location.kind === 'postgres') {
        expect(plan).toMatch(/Index (Only )?Scan( Backward)? using probe_attempts_by_case_id_id/);
        expect(plan).not.toMatch(/Seq Scan/);
      } else {
        expect(plan).toMatch(/SEARCH .*USING (COVERING )?INDEX probe_attempts_by_case_id_id/);
        expect(plan).not.toMatch(/SCAN probe_attempts|TEMP B-TREE/);
      }
    });

    it('pages outcomes by case id through the cases it scopes', async () => {
      const first = await store.results.outcomes({}, ['bulk-dst'], { limit: 10 });
      // Bulk cases have attempts but no outcome: the outcomes list has none of them.
      expect(first.items).toEqual([]);
      expect(first.nextCursor).toBeNull();
    });
  });

  it('counts a dual-stack cluster’s cells per family, and no path through a Service as a cell', async () => {
    await store.recordMatrixCoverage(
      {
        generation: 60,
        mode: 'full',
        cells: 12,
        obligations: 6,
        obligationCells: 5,
        rotated: 7,
        probeBudget: null,
        sweepsPerRotation: 1,
        families: [
          { family: 4, cells: 12 },
          { family: 6, cells: 4 },
        ],
        notGeneratedCount: 0,
        notGenerated: [],
      },
      T0,
    );
    const before = (await store.results.matrix(undefined))!.cellsVerified;
    await store.upsertCases([
      caseRow('00000000000000f6', 'tenant-b', 'tenant-a', { family: 6 }),
      caseRow('00000000000000f7', 'tenant-b', 'tenant-a', {
        via: {
          namespace: 'tenant-a',
          name: 'web',
          clusterIP: '10.96.0.12',
          port: 80,
          podCaseId: seeded.a1,
          hairpin: false,
        },
      }),
    ]);
    for (const caseId of ['00000000000000f6', '00000000000000f7'])
      await store.setOutcome({
        caseId,
        outcome: 'pass',
        round: 1,
        decidedAt: T0,
        reason: 'seeded',
        attempts: 1,
        enforcementLatencyMs: null,
        traceId: null,
        observed: 'reachable',
      });
    const whole = await store.results.matrix(undefined);
    expect(whole?.cellsVerified).toBe(before);
    expect(whole?.families).toEqual([
      { family: 4, cells: 12, cellsVerified: before },
      { family: 6, cells: 4, cellsVerified: 1 },
    ]);
    expect((await store.results.matrix(['tenant-c']))?.families).toEqual([
      { family: 4, cells: null, cellsVerified: expect.any(Number) },
      { family: 6, cells: null, cellsVerified: 0 },
    ]);
  });
});
