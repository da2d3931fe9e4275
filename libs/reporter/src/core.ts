import {
  REPROBE_REQUEST_SUBJECT,
  ReprobeRequestContract,
  evidenceText,
  traceIdOf,
  type AttemptEvidence,
  type AttemptRecord,
  type CaseRecord,
  type CaseUnschedulable,
  type MatrixCoverageReport,
  type OutcomeRecord,
  type PolicyInventory,
  type ProbeResult,
  type Reachability,
  type TestCase,
} from '#lumen/contracts';
import { decide } from './decide.js';
import { CaseTurns, eachLimited } from './case-turns.js';
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

/** Observations of one result judged at once (each is a different case). */
const JUDGED_AT_ONCE = 16;

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

  constructor(
    private readonly ports: ReporterPorts,
    private readonly race: RaceSettings,
  ) {}

  private get store(): ReporterPorts['store'] {
    return this.ports.store;
  }

  onCase(testCase: TestCase, traceparent: string | undefined): Promise<void> {
    return this.turns.run(testCase.caseId, () => this.storeCase(testCase, traceparent));
  }

  private async storeCase(testCase: TestCase, traceparent: string | undefined): Promise<void> {
    const existing = await this.store.getCase(testCase.caseId);
    if (existing && existing.generation >= testCase.generation) return;
    await this.store.upsertCases([
      {
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
        traceparent: traceparent ?? null,
      },
    ]);
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

  async onResult(result: ProbeResult, traceparent: string | undefined): Promise<void> {
    const observedAt = new Date(Date.parse(result.startedAt) + result.durationMs);
    // What the batch's probes to known listeners show of the CNI counts for all of it.
    const cases = new Map(
      (await this.store.getCases(result.observations.map((o) => o.caseId))).map(
        (c) => [c.caseId, c] as const,
      ),
    );
    for (const o of result.observations) {
      const stored = cases.get(o.caseId);
      if (stored)
        this.denyBehaviour.learn(stored.listenerKnown, {
          reachability: o.reachability,
          basis: o.basis,
          evidence: o.evidence ?? null,
        });
    }
    // Each observation is another case: judged side by side, each case in its turn.
    await eachLimited(result.observations, JUDGED_AT_ONCE, (o) =>
      this.judge(
        {
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
        },
        cases.get(o.caseId),
      ),
    );
  }

  /** The scheduler could not place the case: an inconclusive attempt, retried like one. */
  async onUnschedulable(report: CaseUnschedulable, traceparent: string | undefined): Promise<void> {
    await this.judge({
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
    });
  }

  private judge(probe: Observed, known?: CaseRecord): Promise<void> {
    return this.turns.run(probe.caseId, () => this.judgeInTurn(probe, known));
  }

  private async judgeInTurn(probe: Observed, known?: CaseRecord): Promise<void> {
    const stored = known ?? (await this.store.getCase(probe.caseId));
    if (!stored || stored.generation < probe.round)
      throw new CaseNotYetKnown(`case ${probe.caseId} round ${probe.round} is not stored yet`);
    const observed = this.denyBehaviour.interpret(probe, stored);
    const span = this.ports.tracer.startCaseSpan('judge case', observed.traceparent, {
      'lumen.case_id': observed.caseId,
      'lumen.attempt': observed.attempt,
      'lumen.reachability': observed.reachability,
    });
    try {
      await this.store.recordAttempt({
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
      });
      this.ports.events?.attemptStored?.(observed.caseId);
      // A newer plan replaced this round: the attempt is history, the new round decides.
      if (stored.generation === observed.round)
        await this.decideRound(stored, observed, span.traceparent);
    } finally {
      span.end();
    }
  }

  /**
   * From the change to the first observation that matched, over every round since the
   * change (sweeps may supersede the round that saw it). A sample only where the probes saw
   * the change take effect: the first conclusive observation after the change still
   * mismatched, and no outcome was decided since the change. A change enforced before the
   * first probe is only bounded by that probe's delay, so it gives no sample.
   */
  private async enforcementLatency(stored: CaseRecord): Promise<number | null> {
    const before = await this.store.outcome(stored.caseId);
    if (before && before.decidedAt.getTime() >= stored.changedAt.getTime()) return null;
    const matches = (a: AttemptRecord): boolean =>
      (a.reachability === 'reachable') === (stored.expected === 'allow');
    const seen = (await this.store.attemptsSince(stored.caseId, stored.changedAt)).filter(
      (a) => a.reachability !== 'inconclusive',
    );
    const firstMatch = seen.find(matches);
    if (!seen[0] || matches(seen[0]) || !firstMatch) return null;
    return firstMatch.observedAt.getTime() - stored.changedAt.getTime();
  }

  private async decideRound(
    stored: CaseRecord,
    observed: Observed,
    traceparent: string | undefined,
  ): Promise<void> {
    const attempts = (await this.store.attempts(stored.caseId, observed.round)).map((a) => ({
      attempt: a.attempt,
      observedAt: a.observedAt.getTime(),
      reachability: a.reachability,
      basis: a.basis,
    }));
    const decision = decide(
      {
        expected: stored.expected,
        changedAt: stored.changedAt.getTime(),
        attempts,
      },
      this.race,
    );
    const now = this.ports.clock.now();
    if (decision.kind === 'reprobe') {
      const attempt = Math.max(...attempts.map((a) => a.attempt)) + 1;
      await this.ports.bus.publish(
        REPROBE_REQUEST_SUBJECT,
        ReprobeRequestContract,
        {
          caseId: stored.caseId,
          round: observed.round,
          attempt,
          notBefore: new Date(now.getTime() + decision.afterMs).toISOString(),
          reason: decision.reason.slice(0, 300),
          sources: stored.source.pods,
          destinations: stored.destination.pods,
          port: stored.port,
          protocol: stored.protocol,
          listenerKnown: stored.listenerKnown,
        },
        {
          msgId: `${stored.caseId}/${observed.round}/${attempt}`,
          ...(traceparent ? { traceparent } : {}),
        },
      );
      this.ports.log.info('re-probe requested', {
        caseId: stored.caseId,
        attempt,
        afterMs: decision.afterMs,
        reason: decision.reason,
      });
      return;
    }
    const conclusive = attempts.filter((a) => a.reachability !== 'inconclusive');
    const outcome: OutcomeRecord = {
      caseId: stored.caseId,
      outcome: decision.outcome,
      round: observed.round,
      decidedAt: now,
      reason: decision.reason,
      attempts: attempts.length,
      enforcementLatencyMs: await this.enforcementLatency(stored),
      traceId: traceIdOf(traceparent) ?? null,
      observed: conclusiveReachability(conclusive[conclusive.length - 1]?.reachability),
    };
    const { applied, previous } = await this.store.setOutcome(outcome);
    await this.ports.events?.afterVerdict?.(stored.caseId);
    if (!applied) return;
    this.ports.metrics.verdict(outcome.outcome, outcome.enforcementLatencyMs);
    this.ports.log.info('case judged', {
      caseId: stored.caseId,
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      traceId: outcome.traceId,
    });
    this.ports.events?.verdict?.({
      ...outcome,
      previous,
      sourcePod: observed.sourcePod,
      destinationPod: observed.destinationPod,
      evidence: evidenceText(observed.reachability, observed.basis, observed.evidence),
    });
  }
}

/** The newest conclusive observation, as an outcome records it. */
function conclusiveReachability(reachability: Reachability | undefined): OutcomeRecord['observed'] {
  return reachability === 'reachable' || reachability === 'blocked' ? reachability : null;
}
