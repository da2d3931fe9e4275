import {
  caseIndexColumns,
  evidenceText,
  type AttemptRecord,
  type CaseRecord,
  type CaseSide,
  type OutcomeRecord,
} from '#lumen/contracts';
import {
  alertFingerprint,
  alertGroupKey,
  alertNamespaces,
  alertSeverity,
  alertTransition,
  type AlertContent,
  type AlertEvent,
  type AlertStatus,
} from './alert.js';
import { receiverWants, type Receiver } from './receivers.js';

/** A case as the store keeps it: the columns an alert quotes. */
export type AlertCaseFacts = Pick<
  CaseRecord,
  | 'caseId'
  | 'reason'
  | 'source'
  | 'destination'
  | 'port'
  | 'protocol'
  | 'expected'
  | 'rule'
  | 'explanation'
  | 'via'
>;

export type AlertOutcomeFacts = Pick<
  OutcomeRecord,
  'outcome' | 'round' | 'decidedAt' | 'reason' | 'traceId' | 'observed'
>;

export type AlertAttemptFacts = Pick<
  AttemptRecord,
  'reachability' | 'basis' | 'evidence' | 'traceId' | 'sourcePod' | 'destinationPod'
>;

/** What the alerting core reads of a case; CaseStore is the real one. */
export interface CaseFacts {
  getCase(caseId: string): Promise<AlertCaseFacts | null>;
  outcome(caseId: string): Promise<AlertOutcomeFacts | null>;
  history(caseId: string): Promise<readonly { readonly outcome: string }[]>;
  attempts(caseId: string, round: number): Promise<readonly AlertAttemptFacts[]>;
}

/** An alert's current state, as the outbox store keeps it. */
export interface AlertState {
  readonly status: AlertStatus;
  readonly startsAt: Date;
}

/** The persistent side of alerting: alert states and the outbox; AlertOutbox (TypeORM) is the real one. */
export interface AlertStore {
  alertState(fingerprint: string): Promise<AlertState | null>;
  /** Stores the alert's new state and one outbox row per receiver, in one transaction. */
  recordAlert(
    event: AlertEvent,
    namespaces: readonly string[],
    receivers: readonly string[],
    at: Date,
  ): Promise<void>;
}

export interface AlertingSettings {
  readonly receivers: readonly Receiver[];
  /** Base URL of the reporter's API, for links in alerts. */
  readonly apiBaseUrl: string;
}

/**
 * Decides, after each verdict, whether a case's alert fires or resolves. It reads state
 * rather than trusting the caller's idea of "previous", so a verdict redelivered after a
 * crash still fires its alert, and never twice.
 */
export class AlertingCore {
  constructor(
    private readonly cases: CaseFacts,
    private readonly alerts: AlertStore,
    private readonly settings: AlertingSettings,
    private readonly clock: { now(): Date },
    private readonly onTransition?: (event: AlertEvent) => void,
  ) {}

  async afterVerdict(caseId: string): Promise<AlertEvent | undefined> {
    const outcome = await this.cases.outcome(caseId);
    if (!outcome) return undefined;
    const fingerprint = alertFingerprint(caseId);
    const { status, state } = await this.transition(caseId, fingerprint, outcome.outcome);
    if (!status) return undefined;
    const content = await this.content(caseId, outcome);
    if (!content) return undefined;
    const decidedAt = outcome.decidedAt.toISOString();
    const event: AlertEvent = {
      fingerprint,
      groupKey: alertGroupKey(content),
      status,
      severity: alertSeverity(content.expected),
      startsAt: status === 'resolved' && state ? state.startsAt.toISOString() : decidedAt,
      endsAt: status === 'resolved' ? decidedAt : null,
      content,
    };
    const namespaces = alertNamespaces(content);
    const receivers = this.settings.receivers
      .filter((r) => receiverWants(r, { namespaces, severity: event.severity }))
      .map((r) => r.name);
    await this.alerts.recordAlert(event, namespaces, receivers, this.clock.now());
    this.onTransition?.(event);
    return event;
  }

  /** What this verdict does to the case's alert, reading only what that needs. */
  private async transition(
    caseId: string,
    fingerprint: string,
    current: string,
  ): Promise<{ status: AlertStatus | undefined; state: AlertState | null }> {
    // Only a pass or a fail can move an alert: other verdicts read nothing more.
    if (current !== 'pass' && current !== 'fail') return { status: undefined, state: null };
    const state = await this.alerts.alertState(fingerprint);
    // The outcome before this one matters only to a fail that is not firing yet.
    const history =
      current === 'fail' && state?.status !== 'firing' ? await this.cases.history(caseId) : [];
    const status = alertTransition({
      current,
      before: history.length >= 2 ? history[history.length - 2]?.outcome : undefined,
      alert: state?.status,
    });
    return { status, state };
  }

  private async content(
    caseId: string,
    outcome: AlertOutcomeFacts,
  ): Promise<AlertContent | undefined> {
    const stored = await this.cases.getCase(caseId);
    if (!stored) return undefined;
    const attempts = await this.cases.attempts(caseId, outcome.round);
    const deciding =
      [...attempts].reverse().find((a) => a.reachability !== 'inconclusive') ??
      attempts[attempts.length - 1];
    const columns = caseIndexColumns(stored);
    return {
      caseId,
      policy: columns.policy,
      rule:
        columns.ruleDirection !== null && columns.ruleIndex !== null
          ? { direction: columns.ruleDirection, index: columns.ruleIndex }
          : null,
      reason: stored.reason,
      source: endpoint(stored.source, deciding?.sourcePod),
      destination: endpoint(stored.destination, deciding?.destinationPod),
      port: stored.port,
      protocol: stored.protocol,
      service: stored.via
        ? {
            namespace: stored.via.namespace,
            name: stored.via.name,
            clusterIP: stored.via.clusterIP,
            port: stored.via.port,
            hairpin: stored.via.hairpin,
          }
        : null,
      expected: stored.expected,
      observed: outcome.observed,
      outcome: outcome.outcome,
      verdict: outcome.reason,
      evidence: evidenceOf(deciding),
      traceId: deciding?.traceId ?? outcome.traceId,
      decidedAt: outcome.decidedAt.toISOString(),
      apiUrl: `${this.settings.apiBaseUrl}/api/v1/cases/${caseId}`,
    };
  }
}

function endpoint(side: CaseSide, pod: string | null | undefined): AlertContent['source'] {
  return { namespace: side.namespace, labels: side.labels, pod: pod ?? null };
}

function evidenceOf(attempt: AlertAttemptFacts | undefined): string {
  return attempt
    ? evidenceText(attempt.reachability, attempt.basis, attempt.evidence)
    : 'no probe attempt recorded';
}
