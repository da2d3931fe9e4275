import { describe, expect, it } from '@jest/globals';
import {
  CELL_MISMATCH_SUBJECT,
  REPROBE_REQUEST_SUBJECT,
  type AttemptRecord,
  type CellMismatch,
  type CaseRecord,
  type MatrixCoverageReport,
  type NewAttempt,
  type Outcome,
  type OutcomeRecord,
  type PolicyInventory,
  type ProbeResult,
  type ReprobeRequest,
  type TestCase,
} from '#lumen/contracts';
import {
  CaseNotYetKnown,
  ReporterCore,
  type FinalOutcome,
  type RaceSettings,
  type ReporterStore,
  type RotationCounts,
} from '#lumen/reporter';
import {
  InMemoryBus,
  ManualClock,
  RecordingLog,
  RecordingTracer,
  podEndpointFixture,
  testCaseFixture,
} from '#lumen/testing';

/** The store's contract in memory: attempts once per (case, round, attempt), one outcome per round. */
class InMemoryReporterStore implements ReporterStore {
  readonly cases = new Map<string, CaseRecord>();
  readonly attemptRows: AttemptRecord[] = [];
  readonly outcomes = new Map<string, OutcomeRecord>();
  readonly inventory = new Map<string, number>();

  async getCase(caseId: string): Promise<CaseRecord | null> {
    return this.cases.get(caseId) ?? null;
  }
  async getCases(caseIds: readonly string[]): Promise<CaseRecord[]> {
    return caseIds.flatMap((id) => {
      const found = this.cases.get(id);
      return found ? [found] : [];
    });
  }
  readonly caseWrites: number[] = [];
  async upsertCases(cases: readonly CaseRecord[]): Promise<void> {
    this.caseWrites.push(cases.length);
    for (const c of cases) this.cases.set(c.caseId, c);
  }
  async recordAttempt(attempt: NewAttempt): Promise<boolean> {
    const same = (a: AttemptRecord): boolean =>
      a.caseId === attempt.caseId && a.round === attempt.round && a.attempt === attempt.attempt;
    if (this.attemptRows.some(same)) return false;
    this.attemptRows.push({ ...attempt, id: this.attemptRows.length + 1 });
    return true;
  }
  async setOutcome(
    outcome: OutcomeRecord,
  ): Promise<{ applied: boolean; previous: Outcome | undefined }> {
    const previous = this.outcomes.get(outcome.caseId);
    if (previous && previous.round >= outcome.round)
      return { applied: false, previous: previous.outcome };
    this.outcomes.set(outcome.caseId, outcome);
    return { applied: true, previous: previous?.outcome };
  }
  async recordAttempts(attempts: readonly NewAttempt[]): Promise<void> {
    for (const a of attempts) await this.recordAttempt(a);
  }
  async attemptsOf(caseIds: readonly string[]): Promise<AttemptRecord[]> {
    return this.attemptRows.filter((a) => caseIds.includes(a.caseId));
  }
  async outcomesOf(caseIds: readonly string[]): Promise<OutcomeRecord[]> {
    return caseIds.flatMap((id) => {
      const found = this.outcomes.get(id);
      return found ? [found] : [];
    });
  }
  async setOutcomes(
    outcomes: readonly OutcomeRecord[],
  ): Promise<Map<string, { applied: boolean; previous: Outcome | undefined }>> {
    const applied = new Map<string, { applied: boolean; previous: Outcome | undefined }>();
    for (const o of outcomes) applied.set(o.caseId, await this.setOutcome(o));
    return applied;
  }
  async recordPolicyInventory(
    generation: number,
    policies: PolicyInventory['policies'],
  ): Promise<void> {
    for (const p of policies) this.inventory.set(p.policy, generation);
  }
  matrix: MatrixCoverageReport | undefined;
  async recordMatrixCoverage(report: MatrixCoverageReport): Promise<void> {
    if (!this.matrix || this.matrix.generation <= report.generation) this.matrix = report;
  }
  async prunePolicyInventory(generation: number): Promise<void> {
    for (const [policy, g] of this.inventory) if (g < generation) this.inventory.delete(policy);
  }
  readonly tallies = new Map<number, RotationCounts>();
  async addRotationTally(generation: number, counts: RotationCounts): Promise<void> {
    const before = this.tallies.get(generation) ?? {
      cells: 0,
      passed: 0,
      inconclusive: 0,
      mismatched: 0,
    };
    this.tallies.set(generation, {
      cells: before.cells + counts.cells,
      passed: before.passed + counts.passed,
      inconclusive: before.inconclusive + counts.inconclusive,
      mismatched: before.mismatched + counts.mismatched,
    });
  }
}

const RACE: RaceSettings = { settleWindowMs: 10_000, maxAttempts: 3, backoffMs: 1000 };
const CASE_ID = '00000000000000c1';
const client = podEndpointFixture('client', 'node-a', 1);
const web = podEndpointFixture('web', 'node-b', 2);

function reporter() {
  const bus = new InMemoryBus();
  const store = new InMemoryReporterStore();
  const clock = new ManualClock();
  const verdicts: FinalOutcome[] = [];
  const counted: [Outcome, number | null][] = [];
  const afterVerdict: string[] = [];
  const attemptsStored: string[] = [];
  const core = new ReporterCore(
    {
      bus,
      store,
      clock,
      log: new RecordingLog(),
      tracer: new RecordingTracer(),
      metrics: { verdict: (outcome, latency) => counted.push([outcome, latency]) },
      events: {
        attemptStored: (id) => attemptsStored.push(id),
        verdict: (o) => verdicts.push(o),
        afterVerdict: async (id) => afterVerdict.push(id),
      },
    },
    RACE,
  );
  /** A case of round 7 whose last relevant change was `changedAgoMs` before now. */
  const planCase = async (changedAgoMs = 60_000, overrides: Partial<TestCase> = {}) => {
    const kase = testCaseFixture(CASE_ID, [client], [web], {
      changedAt: new Date(clock.now().getTime() - changedAgoMs).toISOString(),
      ...overrides,
    });
    await core.onCase(kase, undefined);
    return kase;
  };
  /** What a prober saw of the case, observed now. */
  const result = (
    reachability: 'reachable' | 'blocked' | 'inconclusive',
    attempt = 1,
    round = 7,
  ): ProbeResult => ({
    batchId: `batch-${attempt}`,
    node: 'node-a',
    attempt,
    batchSequence: attempt,
    source: { namespace: 'default', name: 'client' },
    observations: [
      {
        caseId: CASE_ID,
        round,
        destination: { namespace: 'default', name: 'web' },
        ip: web.ip,
        port: 80,
        protocol: 'TCP',
        reachability,
        basis: reachability === 'reachable' ? 'open (syn-ack)' : 'filtered (no-response)',
        evidence: { state: reachability === 'reachable' ? 'open' : 'filtered', reason: 'x' },
      },
    ],
    startedAt: clock.now().toISOString(),
    durationMs: 0,
    command: ['nsenter', '--net=/proc/1/ns/net', 'nmap'],
  });
  const reprobes = () => bus.on<ReprobeRequest>(REPROBE_REQUEST_SUBJECT);
  return {
    core,
    bus,
    store,
    clock,
    verdicts,
    counted,
    afterVerdict,
    attemptsStored,
    planCase,
    result,
    reprobes,
  };
}

describe('ReporterCore', () => {
  it.each([
    ['allow', 'reachable', 'passed'],
    ['deny', 'blocked', 'passed'],
    ['allow', 'inconclusive', 'inconclusive'],
    ['deny', 'inconclusive', 'inconclusive'],
    ['allow', 'blocked', 'mismatched'],
    ['deny', 'reachable', 'mismatched'],
  ] as const)(
    'judges a rotation cell expected to %s and seen %s as %s, storing no attempt; a mismatch goes to the planner',
    async (expected, reachability, counted) => {
      const { core, store, bus, result } = reporter();
      const base = result(reachability);
      const cell = { ...base.observations[0]!, caseId: '00000000000000d1', expected };
      await core.onResult(
        {
          ...base,
          blockId: 'block-1',
          observations: [cell, { ...cell, caseId: '00000000000000d2', round: 8 }],
        },
        undefined,
      );
      const zero = { cells: 1, passed: 0, inconclusive: 0, mismatched: 0 };
      expect(store.tallies.get(7)).toEqual({ ...zero, [counted]: 1 });
      expect(store.tallies.get(8)).toEqual({ ...zero, [counted]: 1 });
      expect(store.attemptRows).toEqual([]);
      expect(store.outcomes.size).toBe(0);
      expect(bus.on<CellMismatch>(CELL_MISMATCH_SUBJECT)).toEqual(
        counted === 'mismatched'
          ? [
              expect.objectContaining({
                cellId: '00000000000000d1',
                generation: 7,
                source: { namespace: 'default', name: 'client' },
                destination: { namespace: 'default', name: 'web' },
                port: 80,
                protocol: 'TCP',
                expected,
                observed: reachability,
              }),
              expect.objectContaining({ cellId: '00000000000000d2', generation: 8 }),
            ]
          : [],
      );
    },
  );

  it('judges the cases of a result as before when rotation cells ride along', async () => {
    const { core, store, planCase, result } = reporter();
    await planCase();
    const base = result('reachable');
    const cell = {
      ...base.observations[0]!,
      caseId: '00000000000000d1',
      expected: 'deny' as const,
    };
    await core.onResult({ ...base, observations: [...base.observations, cell] }, undefined);
    expect(store.outcomes.get(CASE_ID)).toMatchObject({ outcome: 'pass' });
    expect(store.attemptRows.map((a) => a.caseId)).toEqual([CASE_ID]);
    expect(store.tallies.get(7)).toEqual({ cells: 1, passed: 0, inconclusive: 0, mismatched: 1 });
  });

  it('stores a case once per round and keeps its pods and protocol typed', async () => {
    const { core, store, planCase } = reporter();
    const kase = await planCase();
    await core.onCase({ ...kase, generation: 6, port: 9999 }, undefined); // older: ignored
    expect(store.cases.get(CASE_ID)).toMatchObject({
      generation: 7,
      port: 80,
      protocol: 'TCP',
      source: { namespace: 'default', pods: [client] },
      destination: { pods: [web] },
      rule: null,
    });
  });

  it('judges a matching observation outside the settle window a pass, once', async () => {
    const { core, store, planCase, result, verdicts, counted, afterVerdict, reprobes } = reporter();
    await planCase();
    await core.onResult(result('reachable'), undefined);
    expect(store.outcomes.get(CASE_ID)).toMatchObject({
      outcome: 'pass',
      round: 7,
      attempts: 1,
      observed: 'reachable',
      enforcementLatencyMs: null,
    });
    expect(verdicts).toEqual([
      expect.objectContaining({
        caseId: CASE_ID,
        outcome: 'pass',
        previous: undefined,
        sourcePod: 'default/client',
        destinationPod: 'default/web',
        evidence: 'reachable: open (syn-ack) nmap state open (x)',
      }),
    ]);
    expect(counted).toEqual([['pass', null]]);
    expect(afterVerdict).toEqual([CASE_ID]);
    expect(reprobes()).toEqual([]);
  });

  it('re-probes a mismatch with the stored pods until attempts run out, then fails', async () => {
    const { core, store, clock, planCase, result, reprobes, counted } = reporter();
    await planCase(60_000, { expected: 'deny' });
    await core.onResult(result('reachable', 1), undefined);
    expect(reprobes()).toEqual([
      {
        caseId: CASE_ID,
        round: 7,
        attempt: 2,
        notBefore: new Date(clock.now().getTime() + 1000).toISOString(),
        reason: 'mismatch: confirming',
        sources: [client],
        destinations: [web],
        port: 80,
        protocol: 'TCP',
        listenerKnown: true,
      },
    ]);
    expect(store.outcomes.size).toBe(0);
    clock.advance(1000);
    await core.onResult(result('reachable', 2), undefined);
    clock.advance(2000);
    await core.onResult(result('reachable', 3), undefined);
    expect(store.outcomes.get(CASE_ID)).toMatchObject({
      outcome: 'fail',
      attempts: 3,
      reason: 'expected blocked, observed reachable: open (syn-ack)',
    });
    expect(reprobes().map((r) => r.attempt)).toEqual([2, 3]);
    expect(counted).toEqual([['fail', null]]);
  });

  it.each([
    [
      'allow',
      'pass',
      'blocked',
      'blocked through Service shop/api (10.96.0.12:80) but allowed pod-to-pod: the CNI mishandles Service traffic',
    ],
    [
      'deny',
      'pass',
      'reachable',
      'allowed through Service shop/api (10.96.0.12:80) but blocked pod-to-pod: policies are not applied to Service traffic',
    ],
    [
      'allow',
      'fail',
      'blocked',
      'through Service shop/api (10.96.0.12:80): expected reachable, observed blocked: filtered (no-response)',
    ],
  ] as const)(
    'says plainly when a case expected to %s fails only through its Service (pod to pod: %s)',
    async (expected, podOutcome, seen, reason) => {
      const { core, store, clock, planCase, result, reprobes } = reporter();
      await planCase(60_000, { expected });
      const podSeen =
        podOutcome === 'pass' ? (expected === 'allow' ? 'reachable' : 'blocked') : seen;
      for (let attempt = 1; attempt <= (podOutcome === 'pass' ? 1 : 3); attempt++)
        await core.onResult(result(podSeen, attempt), undefined);
      expect(store.outcomes.get(CASE_ID)?.outcome).toBe(podOutcome);
      const VIA_ID = '00000000000000e1';
      const via = {
        namespace: 'shop',
        name: 'api',
        clusterIP: '10.96.0.12',
        port: 80,
        podCaseId: CASE_ID,
        hairpin: false,
      };
      await core.onCase(
        testCaseFixture(VIA_ID, [client], [web], {
          changedAt: new Date(clock.now().getTime() - 60_000).toISOString(),
          expected,
          via,
        }),
        undefined,
      );
      const throughService = (attempt: number): ProbeResult => {
        const base = result(seen, attempt);
        const observation = { ...base.observations[0]! };
        delete observation.destination;
        return {
          ...base,
          batchId: `via-${attempt}`,
          observations: [{ ...observation, caseId: VIA_ID, ip: via.clusterIP }],
        };
      };
      for (let attempt = 1; attempt <= 3; attempt++) {
        await core.onResult(throughService(attempt), undefined);
        clock.advance(2000);
      }
      expect(store.cases.get(VIA_ID)?.via).toEqual(via);
      expect(store.outcomes.get(VIA_ID)).toMatchObject({ outcome: 'fail', reason });
      expect(
        reprobes()
          .filter((r) => r.caseId === VIA_ID)
          .map((r) => r.via),
      ).toEqual([via, via]);
    },
  );

  it('does not fail a mismatch inside the settle window, and measures the enforcement latency', async () => {
    const { core, store, clock, planCase, result, reprobes } = reporter();
    await planCase(2000, { expected: 'deny' });
    await core.onResult(result('reachable', 1), undefined);
    expect(reprobes()).toEqual([
      expect.objectContaining({ attempt: 2, reason: 'mismatch inside the settle window' }),
    ]);
    clock.advance(1500);
    await core.onResult(result('blocked', 2), undefined);
    expect(store.outcomes.get(CASE_ID)).toMatchObject({
      outcome: 'pass',
      enforcementLatencyMs: 3500,
    });
  });

  it('is idempotent under redelivery: the same result twice stores one attempt and one verdict', async () => {
    const { core, store, planCase, result, verdicts, afterVerdict, attemptsStored } = reporter();
    await planCase();
    const once = result('reachable');
    await core.onResult(once, undefined);
    await core.onResult(once, undefined);
    expect(store.attemptRows).toHaveLength(1);
    expect(verdicts).toHaveLength(1);
    // Alerting is asked again: a redelivery after a crash may be the first it hears of it.
    expect(afterVerdict).toEqual([CASE_ID, CASE_ID]);
    expect(attemptsStored).toEqual([CASE_ID, CASE_ID]);
  });

  it('refuses a result whose case is not stored yet, so that it is delivered again later', async () => {
    const { core, store, result } = reporter();
    await expect(core.onResult(result('reachable'), undefined)).rejects.toBeInstanceOf(
      CaseNotYetKnown,
    );
    expect(store.attemptRows).toEqual([]);
  });

  it('stores cases that arrive together in one write, the newest generation of each, never an older one', async () => {
    const { core, store } = reporter();
    const id = (i: number) => `0000000000000${(0x100 + i).toString(16)}`;
    await core.onCase(testCaseFixture(id(0), [client], [web], { generation: 9 }), undefined);
    store.caseWrites.length = 0;
    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) =>
        core.onCase(testCaseFixture(id(i + 1), [client], [web], { generation: 3 }), undefined),
      ),
      core.onCase(testCaseFixture(id(1), [client], [web], { generation: 4 }), undefined),
      // Older than what is stored: changes nothing.
      core.onCase(testCaseFixture(id(0), [client], [web], { generation: 8 }), undefined),
    ]);
    expect(store.caseWrites).toEqual([50]);
    expect(store.cases.get(id(1))?.generation).toBe(4);
    expect(store.cases.get(id(0))?.generation).toBe(9);
  });

  it('judges the known cases of a result together, and asks again for the one not stored yet', async () => {
    const { core, store, planCase, result, verdicts } = reporter();
    await planCase();
    const other = '00000000000000c2';
    const both = result('reachable');
    const first = both.observations[0]!;
    const twice: ProbeResult = {
      ...both,
      observations: [first, { ...first, caseId: other }],
    };
    await expect(core.onResult(twice, undefined)).rejects.toBeInstanceOf(CaseNotYetKnown);
    expect(verdicts.map((v) => v.caseId)).toEqual([CASE_ID]);
    // The other case arrives; the redelivered result judges it, and CASE_ID only once.
    await core.onCase(testCaseFixture(other, [client], [web]), undefined);
    await core.onResult(twice, undefined);
    expect(verdicts.map((v) => [v.caseId, v.outcome])).toEqual([
      [CASE_ID, 'pass'],
      [other, 'pass'],
    ]);
    expect(store.attemptRows.filter((a) => a.caseId === CASE_ID)).toHaveLength(1);
  });

  it('keeps a result of an older round as history without judging that round', async () => {
    const { core, store, planCase, result, verdicts } = reporter();
    await planCase(60_000, { generation: 8 });
    await core.onResult(result('blocked', 1, 7), undefined);
    expect(store.attemptRows).toEqual([expect.objectContaining({ round: 7 })]);
    expect(store.outcomes.size).toBe(0);
    expect(verdicts).toEqual([]);
  });

  it('records a case the scheduler could not place as an inconclusive attempt and retries it', async () => {
    const { core, store, clock, planCase, reprobes } = reporter();
    await planCase();
    await core.onUnschedulable(
      { caseId: CASE_ID, round: 7, attempt: 1, reason: 'no prober', at: clock.now().toISOString() },
      undefined,
    );
    expect(store.attemptRows).toEqual([
      expect.objectContaining({
        reachability: 'inconclusive',
        basis: 'unschedulable: no prober',
        node: '-',
      }),
    ]);
    expect(reprobes()).toEqual([expect.objectContaining({ attempt: 2 })]);
  });

  it('keeps the newest complete policy inventory and ignores parts of older ones', async () => {
    const { core, store } = reporter();
    const part = (generation: number, index: number, parts: number, policy: string) => ({
      generation,
      part: index,
      parts,
      policies: [{ policy, ingress: [0], egress: [] }],
    });
    await core.onPolicyInventory(part(5, 0, 1, 'a/old'));
    await core.onPolicyInventory(part(6, 0, 2, 'a/new-1'));
    await core.onPolicyInventory(part(5, 0, 1, 'a/late'));
    expect([...store.inventory.keys()].sort()).toEqual(['a/new-1', 'a/old']);
    await core.onPolicyInventory(part(6, 1, 2, 'a/new-2'));
    expect([...store.inventory.keys()].sort()).toEqual(['a/new-1', 'a/new-2']);
  });

  describe('a CNI that rejects instead of dropping', () => {
    const unlistedPort = '00000000000000c2';
    const observation = (
      kase: string,
      state: 'closed' | 'filtered',
      reachability: 'reachable' | 'blocked',
    ) => ({
      caseId: kase,
      round: 7,
      destination: { namespace: 'default', name: 'web' },
      ip: web.ip,
      port: kase === CASE_ID ? 80 : 65432,
      protocol: 'TCP' as const,
      reachability,
      basis: `${state} (reset)`,
      evidence: { state, reason: 'reset' },
    });

    it('never fails a deny check on a port with no listener once it has seen the CNI reject', async () => {
      const { core, store, clock, planCase } = reporter();
      // A deny to a known listener, and a deny to port 65432 where nothing listens.
      await planCase(60_000, { expected: 'deny' });
      await core.onCase(
        testCaseFixture(unlistedPort, [client], [web], {
          expected: 'deny',
          port: 65432,
          listenerKnown: false,
          changedAt: new Date(clock.now().getTime() - 60_000).toISOString(),
        }),
        undefined,
      );
      for (let attempt = 1; attempt <= 3; attempt += 1) {
        const listener = observation(CASE_ID, 'closed', 'blocked');
        const closed = observation(unlistedPort, 'closed', 'reachable');
        await core.onResult(
          {
            batchId: `b-${attempt}`,
            node: 'node-a',
            attempt,
            batchSequence: attempt,
            source: { namespace: 'default', name: 'client' },
            // The ambiguous probe first: the batch's listener probe still teaches the CNI.
            observations: [closed, listener],
            startedAt: clock.now().toISOString(),
            durationMs: 0,
          },
          undefined,
        );
        clock.advance(5000);
      }
      expect(core.denyBehaviour.style).toBe('reject');
      expect(store.outcomes.get(CASE_ID)?.outcome).toBe('pass');
      expect(store.outcomes.get(unlistedPort)).toMatchObject({
        outcome: 'inconclusive',
        reason: expect.stringContaining(
          'cannot tell a reject from a closed port',
        ) as unknown as string,
      });
    });
  });

  it('keeps the planner’s newest view of the matrix', async () => {
    const { core, store } = reporter();
    const report = (generation: number, cells: number): MatrixCoverageReport => ({
      generation,
      mode: 'budget',
      cells,
      obligations: 4,
      obligationCells: 4,
      rotated: 0,
      probeBudget: 100,
      sweepsPerRotation: 1,
      notGeneratedCount: 0,
      notGenerated: [],
    });
    await core.onMatrixCoverage(report(9, 288));
    await core.onMatrixCoverage(report(8, 100));
    expect(store.matrix).toMatchObject({ generation: 9, cells: 288 });
  });
});
