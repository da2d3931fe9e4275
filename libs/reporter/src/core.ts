import {
  CELL_MISMATCH_SUBJECT,
  CellMismatchContract,
  REPROBE_REQUEST_SUBJECT,
  ReprobeRequestContract,
  evidenceText,
  traceIdOf,
  type AttemptEvidence,
  type AttemptRecord,
  type CaseRecord,
  type CaseSpan,
  type CaseUnschedulable,
  type MatrixCoverageReport,
  type Outcome,
  type Observation,
  type OutcomeRecord,
  type PolicyInventory,
  type ProbeResult,
  type RotationCounts,
  type Reachability,
  type TestCase,
} from '#lumen/contracts';
import { decide } from './decide.js';
import { servicePathReason } from './service-verdict.js';
import { CaseTurns } from './case-turns.js';
import { DenyBehaviour } from './deny-behaviour.js';
import type { ReporterPorts } from './ports.js';
import type { RaceSettings } from './settings.js';

interface Observed {
  readonly caseId: string;
  readonly round: number;
  readonly attempt: number;
  readonly batchId: string;
  readonly node: string;
  readonly observedAt: Date;
  readonly reachability: Reachability;
  readonly basis: string;
  readonly evidence: AttemptEvidence | null;
  readonly traceparent: string | undefined;
  readonly sourcePod?: string;
  readonly destinationPod?: string;
}

/** Cases stored in one write at most, and how long arriving cases are gathered. */
const CASES_PER_WRITE = 200;
const CASE_GATHER_MS = 5;

interface ArrivingCase {
  readonly testCase: TestCase;
  readonly traceparent: string | undefined;
  readonly done: () => void;
  readonly failed: (error: unknown) => void;
}

/** Thrown when a result arrives before its case: the message is delivered again later. */
export class CaseNotYetKnown extends Error {}

/**
 * The reporter's domain: stores cases and probe attempts, judges each case under the
 * verdict model, asks for re-probes while a race may explain a mismatch, and stores one
 * final outcome per case and round. Every step is idempotent, so redelivery is harmless.
 */
export class ReporterCore {
  private inventoryGeneration = -1;
  /** Whether this cluster's CNI drops or rejects denied connections, as probes showed it. */
  readonly denyBehaviour = new DenyBehaviour();
  private readonly inventoryParts = new Set<number>();
  private readonly turns = new CaseTurns();
  private arriving: ArrivingCase[] = [];
  private arrivalTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ports: ReporterPorts,
    private readonly race: RaceSettings,
  ) {}

  private get store(): ReporterPorts['store'] {
    return this.ports.store;
  }

  /**
   * Stores a case (a newer generation replaces an older one, never the reverse). Cases
   * that arrive together are gathered for a few milliseconds and stored in one write:
   * a plan of 26,000 cases arrives within seconds.
   */
  onCase(testCase: TestCase, traceparent: string | undefined): Promise<void> {
    return new Promise((done, failed) => {
      this.arriving.push({ testCase, traceparent, done, failed });
      if (this.arriving.length >= CASES_PER_WRITE) void this.storeArrived();
      else this.arrivalTimer ??= setTimeout(() => void this.storeArrived(), CASE_GATHER_MS);
    });
  }

  private async storeArrived(): Promise<void> {
    clearTimeout(this.arrivalTimer);
    this.arrivalTimer = undefined;
    const arrived = this.arriving;
    this.arriving = [];
    if (arrived.length === 0) return;
    const newest = new Map<string, ArrivingCase>();
    for (const a of arrived) {
      const seen = newest.get(a.testCase.caseId);
      if (!seen || a.testCase.generation > seen.testCase.generation)
        newest.set(a.testCase.caseId, a);
    }
    const ids = [...newest.keys()];
    try {
      await this.turns.runAll(ids, async () => {
        const stored = new Map((await this.store.getCases(ids)).map((c) => [c.caseId, c]));
        await this.store.upsertCases(
          [...newest.values()]
            .filter(
              (a) => (stored.get(a.testCase.caseId)?.generation ?? -1) < a.testCase.generation,
            )
            .map((a) => this.caseRecord(a.testCase, a.traceparent)),
        );
      });
      for (const a of arrived) a.done();
    } catch (error) {
      for (const a of arrived) a.failed(error);
    }
  }

  private caseRecord(testCase: TestCase, traceparent: string | undefined): CaseRecord {
    return {
      caseId: testCase.caseId,
      generation: testCase.generation,
      reason: testCase.reason,
      source: { ...testCase.source, pods: testCase.sources },
      destination: { ...testCase.destination, pods: testCase.destinations },
      port: testCase.port,
      protocol: testCase.protocol,
      expected: testCase.expected,
      explanation: testCase.explanation,
      rule: testCase.rule ?? null,
      changedAt: new Date(testCase.changedAt),
      updatedAt: this.ports.clock.now(),
      listenerKnown: testCase.listenerKnown,
      loopback: testCase.loopback,
      via: testCase.via ?? null,
      family: testCase.family ?? null,
      traceparent: traceparent ?? null,
    };
  }

  /** The planner's policy inventory, for rule coverage; parts of older generations are ignored. */
  async onPolicyInventory(inventory: PolicyInventory): Promise<void> {
    if (inventory.generation < this.inventoryGeneration) return;
    if (inventory.generation > this.inventoryGeneration) {
      this.inventoryGeneration = inventory.generation;
      this.inventoryParts.clear();
    }
    await this.store.recordPolicyInventory(inventory.generation, inventory.policies);
    this.inventoryParts.add(inventory.part);
    if (this.inventoryParts.size === inventory.parts)
      await this.store.prunePolicyInventory(inventory.generation);
  }

  /** The planner's view of the matrix after a plan: kept for the API's coverage. */
  async onMatrixCoverage(report: MatrixCoverageReport): Promise<void> {
    await this.store.recordMatrixCoverage(report, this.ports.clock.now());
  }

  /**
   * Rotation cells of a block (ADR 0013), judged at once and counted, with no attempt
   * stored: a probe that agrees with the expected verdict passes; an inconclusive one waits
   * for the next rotation; one that disagrees goes back to the planner, which publishes
   * the cell as a full case (re-probed, stored with its evidence, alerted on).
   */
  private async judgeRotation(
    result: ProbeResult,
    observations: readonly Observation[],
    at: Date,
  ): Promise<void> {
    const byGeneration = new Map<number, { -readonly [K in keyof RotationCounts]: number }>();
    for (const o of observations) {
      const tally = byGeneration.get(o.round) ?? {
        cells: 0,
        passed: 0,
        inconclusive: 0,
        mismatched: 0,
      };
      byGeneration.set(o.round, tally);
      tally.cells += 1;
      if (o.reachability === 'inconclusive') {
        tally.inconclusive += 1;
        continue;
      }
      if ((o.reachability === 'reachable') === (o.expected === 'allow')) {
        tally.passed += 1;
        continue;
      }
      tally.mismatched += 1;
      if (!o.destination || o.protocol === 'SCTP' || !o.expected) continue;
      this.ports.log.warn(
        'rotation cell disagrees with its expected verdict: sent for a full case',
        {
          cellId: o.caseId,
          generation: o.round,
          expected: o.expected,
          observed: o.reachability,
        },
      );
      await this.ports.bus.publish(
        CELL_MISMATCH_SUBJECT,
        CellMismatchContract,
        {
          cellId: o.caseId,
          generation: o.round,
          source: { namespace: result.source.namespace, name: result.source.name },
          destination: { namespace: o.destination.namespace, name: o.destination.name },
          port: o.port,
          protocol: o.protocol,
          expected: o.expected,
          observed: o.reachability,
          at: at.toISOString(),
        },
        { msgId: `${o.caseId}/${o.round}/mismatch` },
      );
    }
    for (const [generation, counts] of byGeneration) {
      await this.ports.store.addRotationTally(generation, counts, at);
      this.ports.metrics.rotationCells?.(counts);
    }
  }

  async onResult(result: ProbeResult, traceparent: string | undefined): Promise<void> {
    const observedAt = new Date(Date.parse(result.startedAt) + result.durationMs);
    const rotation = result.observations.filter((o) => o.expected !== undefined);
    if (rotation.length > 0) await this.judgeRotation(result, rotation, observedAt);
    const observations = result.observations.filter((o) => o.expected === undefined);
    if (observations.length === 0) return;
    // What the batch's probes to known listeners show of the CNI counts for all of it.
    const cases = new Map(
      (await this.store.getCases(observations.map((o) => o.caseId))).map(
        (c) => [c.caseId, c] as const,
      ),
    );
    for (const o of observations) {
      const stored = cases.get(o.caseId);
      if (stored)
        this.denyBehaviour.learn(stored.listenerKnown, {
          reachability: o.reachability,
          basis: o.basis,
          evidence: o.evidence ?? null,
        });
    }
    // A result's observations are judged together (one statement per step for all of
    // them), in the turns of all its cases.
    await this.judge(
      observations.map((o) => ({
        caseId: o.caseId,
        round: o.round,
        attempt: result.attempt,
        batchId: result.batchId,
        node: result.node,
        observedAt,
        reachability: o.reachability,
        basis: o.basis,
        evidence: o.evidence
          ? { ...o.evidence, ...(result.command ? { command: result.command } : {}) }
          : null,
        traceparent: result.traces?.[o.caseId] ?? traceparent,
        sourcePod: `${result.source.namespace}/${result.source.name}`,
        ...(o.destination
          ? { destinationPod: `${o.destination.namespace}/${o.destination.name}` }
          : {}),
      })),
      cases,
    );
  }

  /** The scheduler could not place the case: an inconclusive attempt, retried like one. */
  async onUnschedulable(report: CaseUnschedulable, traceparent: string | undefined): Promise<void> {
    const cases = new Map((await this.store.getCases([report.caseId])).map((c) => [c.caseId, c]));
    await this.judge(
      [
        {
          caseId: report.caseId,
          round: report.round,
          attempt: report.attempt,
          batchId: 'unschedulable',
          node: '-',
          observedAt: new Date(report.at),
          reachability: 'inconclusive',
          basis: `unschedulable: ${report.reason}`,
          evidence: null,
          traceparent,
        },
      ],
      cases,
    );
  }

  private judge(
    probes: readonly Observed[],
    cases: ReadonlyMap<string, CaseRecord>,
  ): Promise<void> {
    const ids = [...new Set(probes.map((p) => p.caseId))];
    return this.turns.runAll(ids, () => this.judgeInTurn(probes, cases));
  }

  /**
   * Stores the attempts of cases that are known, decides their rounds, then, if a case was
   * not stored yet, throws: the message comes again, and what was done is done once.
   */
  private async judgeInTurn(
    probes: readonly Observed[],
    cases: ReadonlyMap<string, CaseRecord>,
  ): Promise<void> {
    const known: { observed: Observed; stored: CaseRecord; span: CaseSpan }[] = [];
    let unknown: Observed | undefined;
    for (const probe of probes) {
      const stored = cases.get(probe.caseId);
      if (!stored || stored.generation < probe.round) {
        unknown ??= probe;
        continue;
      }
      const observed = this.denyBehaviour.interpret(probe, stored);
      const span = this.ports.tracer.startCaseSpan('judge case', observed.traceparent, {
        'lumen.case_id': observed.caseId,
        'lumen.attempt': observed.attempt,
        'lumen.reachability': observed.reachability,
      });
      known.push({ observed, stored, span });
    }
    try {
      await this.store.recordAttempts(
        known.map(({ observed, span }) => ({
          caseId: observed.caseId,
          round: observed.round,
          attempt: observed.attempt,
          batchId: observed.batchId,
          node: observed.node,
          observedAt: observed.observedAt,
          reachability: observed.reachability,
          basis: observed.basis,
          evidence: observed.evidence,
          traceId: span.traceId ?? null,
          sourcePod: observed.sourcePod ?? null,
          destinationPod: observed.destinationPod ?? null,
        })),
      );
      for (const { observed } of known) this.ports.events?.attemptStored?.(observed.caseId);
      // A newer plan replaced a round: its attempt is history, the new round decides.
      const deciding = known.filter((k) => k.stored.generation === k.observed.round);
      if (deciding.length > 0) await this.decideRounds(deciding);
    } finally {
      for (const { span } of known) span.end();
    }
    if (unknown)
      throw new CaseNotYetKnown(`case ${unknown.caseId} round ${unknown.round} is not stored yet`);
  }

  /**
   * From the change to the first observation that matched, over every round since the
   * change (sweeps may supersede the round that saw it). A sample only where the probes saw
   * the change take effect: the first conclusive observation after the change still
   * mismatched, and no outcome was decided since the change. A change enforced before the
   * first probe is only bounded by that probe's delay, so it gives no sample.
   */
  private enforcementLatency(
    stored: CaseRecord,
    before: OutcomeRecord | undefined,
    attempts: readonly AttemptRecord[],
  ): number | null {
    if (before && before.decidedAt.getTime() >= stored.changedAt.getTime()) return null;
    const matches = (a: AttemptRecord): boolean =>
      (a.reachability === 'reachable') === (stored.expected === 'allow');
    const seen = attempts
      .filter(
        (a) =>
          a.reachability !== 'inconclusive' && a.observedAt.getTime() >= stored.changedAt.getTime(),
      )
      .sort((a, b) => a.observedAt.getTime() - b.observedAt.getTime() || a.id - b.id);
    const firstMatch = seen.find(matches);
    if (!seen[0] || matches(seen[0]) || !firstMatch) return null;
    return firstMatch.observedAt.getTime() - stored.changedAt.getTime();
  }

  /** Decides the rounds of these cases: a re-probe, or a final outcome stored for each. */
  private async decideRounds(
    deciding: readonly { observed: Observed; stored: CaseRecord; span: CaseSpan }[],
  ): Promise<void> {
    const ids = deciding.map((d) => d.stored.caseId);
    const attemptsByCase = new Map<string, AttemptRecord[]>();
    for (const a of await this.store.attemptsOf(ids)) {
      const list = attemptsByCase.get(a.caseId);
      if (list) list.push(a);
      else attemptsByCase.set(a.caseId, [a]);
    }
    const now = this.ports.clock.now();
    const finals: {
      observed: Observed;
      stored: CaseRecord;
      outcome: Omit<OutcomeRecord, 'enforcementLatencyMs'>;
    }[] = [];
    for (const { observed, stored, span } of deciding) {
      const attempts = (attemptsByCase.get(stored.caseId) ?? [])
        .filter((a) => a.round === observed.round)
        .sort((a, b) => a.attempt - b.attempt)
        .map((a) => ({
          attempt: a.attempt,
          observedAt: a.observedAt.getTime(),
          reachability: a.reachability,
          basis: a.basis,
        }));
      const decision = decide(
        { expected: stored.expected, changedAt: stored.changedAt.getTime(), attempts },
        this.race,
      );
      if (decision.kind === 'reprobe') {
        await this.requestReprobe(stored, observed, span.traceparent, {
          attempt: Math.max(...attempts.map((a) => a.attempt)) + 1,
          notBefore: new Date(now.getTime() + decision.afterMs),
          reason: decision.reason,
          afterMs: decision.afterMs,
        });
        continue;
      }
      const conclusive = attempts.filter((a) => a.reachability !== 'inconclusive');
      finals.push({
        observed,
        stored,
        outcome: {
          caseId: stored.caseId,
          outcome: decision.outcome,
          round: observed.round,
          decidedAt: now,
          reason: decision.reason,
          attempts: attempts.length,
          traceId: traceIdOf(span.traceparent) ?? null,
          observed: conclusiveReachability(conclusive[conclusive.length - 1]?.reachability),
        },
      });
    }
    if (finals.length === 0) return;
    const podCaseIds = finals.flatMap((f) => (f.stored.via ? [f.stored.via.podCaseId] : []));
    const before = new Map(
      (
        await this.store.outcomesOf([
          ...new Set([...finals.map((f) => f.stored.caseId), ...podCaseIds]),
        ])
      ).map((o) => [o.caseId, o] as const),
    );
    // A pod-to-pod case decided in this same batch counts with its new outcome.
    const podOutcome = (caseId: string): Outcome | undefined =>
      finals.find((f) => f.stored.caseId === caseId)?.outcome.outcome ??
      before.get(caseId)?.outcome;
    const outcomes = finals.map((f): OutcomeRecord => ({
      ...f.outcome,
      reason: f.stored.via
        ? servicePathReason({
            via: f.stored.via,
            outcome: f.outcome.outcome,
            expected: f.stored.expected,
            reason: f.outcome.reason,
            podOutcome: podOutcome(f.stored.via.podCaseId),
          }).slice(0, 1000)
        : f.stored.family
          ? `over IPv${f.stored.family}: ${f.outcome.reason}`.slice(0, 1000)
          : f.outcome.reason,
      enforcementLatencyMs: this.enforcementLatency(
        f.stored,
        before.get(f.stored.caseId),
        attemptsByCase.get(f.stored.caseId) ?? [],
      ),
    }));
    const stored = await this.store.setOutcomes(outcomes);
    for (const [i, { observed }] of finals.entries())
      await this.announce(outcomes[i] as OutcomeRecord, observed, stored.get(observed.caseId));
  }

  /** After an outcome is stored: alerting looks, and a new one is counted, logged and told. */
  private async announce(
    outcome: OutcomeRecord,
    observed: Observed,
    result: { readonly applied: boolean; readonly previous: Outcome | undefined } | undefined,
  ): Promise<void> {
    await this.ports.events?.afterVerdict?.(outcome.caseId);
    if (!result?.applied) return;
    this.ports.metrics.verdict(outcome.outcome, outcome.enforcementLatencyMs);
    this.ports.log.info('case judged', {
      caseId: outcome.caseId,
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      traceId: outcome.traceId,
    });
    this.ports.events?.verdict?.({
      ...outcome,
      previous: result.previous,
      sourcePod: observed.sourcePod,
      destinationPod: observed.destinationPod,
      evidence: evidenceText(observed.reachability, observed.basis, observed.evidence),
    });
  }

  private async requestReprobe(
    stored: CaseRecord,
    observed: Observed,
    traceparent: string | undefined,
    next: { attempt: number; notBefore: Date; reason: string; afterMs: number },
  ): Promise<void> {
    await this.ports.bus.publish(
      REPROBE_REQUEST_SUBJECT,
      ReprobeRequestContract,
      {
        caseId: stored.caseId,
        round: observed.round,
        attempt: next.attempt,
        notBefore: next.notBefore.toISOString(),
        reason: next.reason.slice(0, 300),
        sources: stored.source.pods,
        destinations: stored.destination.pods,
        port: stored.port,
        protocol: stored.protocol,
        listenerKnown: stored.listenerKnown,
        ...(stored.via ? { via: stored.via } : {}),
      },
      {
        msgId: `${stored.caseId}/${observed.round}/${next.attempt}`,
        ...(traceparent ? { traceparent } : {}),
      },
    );
    this.ports.log.info('re-probe requested', {
      caseId: stored.caseId,
      attempt: next.attempt,
      afterMs: next.afterMs,
      reason: next.reason,
    });
  }
}

/** The newest conclusive observation, as an outcome records it. */
function conclusiveReachability(reachability: Reachability | undefined): OutcomeRecord['observed'] {
  return reachability === 'reachable' || reachability === 'blocked' ? reachability : null;
}
