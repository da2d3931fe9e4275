import type { Scope } from '#lumen/access';
import type {
  ApiSummary,
  AttemptItem,
  AttemptRecord,
  CaseDetail,
  LatencyStats,
  MatrixCoverageAnswer,
  NamespaceMatrix,
  ClassMatrix,
  Regression,
  MatrixCoverageReport,
  OutcomeItem,
  Page,
  PolicyCoverage,
  CaseRecord,
  CaseTracer,
  Clock,
  Log,
  NewAttempt,
  Outcome,
  OutcomeRecord,
  PolicyInventory,
  Publisher,
  RotationCounts,
} from '#lumen/contracts';

/** The part of the store the reporter uses; CaseStore (libs/store, TypeORM) is the real one. */
export interface ReporterStore {
  getCase(caseId: string): Promise<CaseRecord | null>;
  /** The stored ones among these cases, in any order. */
  getCases(caseIds: readonly string[]): Promise<CaseRecord[]>;
  upsertCases(cases: readonly CaseRecord[]): Promise<void>;
  /** Stores attempts once each; one with a stored case, round and attempt is left alone. */
  recordAttempts(attempts: readonly NewAttempt[]): Promise<void>;
  /** Every stored attempt of these cases, in any order. */
  attemptsOf(caseIds: readonly string[]): Promise<AttemptRecord[]>;
  /**
   * Sets each case's outcome for its round once (a round already decided, or an older one,
   * changes nothing); says per case whether it was stored, and the outcome it replaced.
   */
  setOutcomes(
    outcomes: readonly OutcomeRecord[],
  ): Promise<
    ReadonlyMap<string, { readonly applied: boolean; readonly previous: Outcome | undefined }>
  >;
  outcomesOf(caseIds: readonly string[]): Promise<OutcomeRecord[]>;
  recordPolicyInventory(generation: number, policies: PolicyInventory['policies']): Promise<void>;
  /** Keeps the planner's newest view of the matrix. */
  recordMatrixCoverage(report: MatrixCoverageReport, at: Date): Promise<void>;
  prunePolicyInventory(generation: number): Promise<void>;
  /** Adds rotation cells judged in blocks to their generation's tally (ADR 0013). */
  addRotationTally(generation: number, counts: RotationCounts, at: Date): Promise<void>;
}

export type { RotationCounts } from '#lumen/contracts';

/** A case's final outcome for a round, as it was stored. */
export interface FinalOutcome extends OutcomeRecord {
  readonly previous: Outcome | undefined;
  /** The pods of the deciding attempt. */
  readonly sourcePod: string | undefined;
  readonly destinationPod: string | undefined;
  /** What the deciding attempt saw, in words (nmap's state and reason when it had one). */
  readonly evidence: string;
}

/** What the reporter reports about its verdicts; libs/telemetry has the Prometheus one. */
export interface ReporterMetrics {
  verdict(outcome: Outcome, enforcementLatencyMs: number | null): void;
  /** Rotation cells judged in blocks, by what their probe showed. */
  rotationCells?(counts: RotationCounts): void;
}

export const noReporterMetrics: ReporterMetrics = { verdict: () => undefined };

/** Who else wants to know what the reporter did. */
export interface ReporterEvents {
  /** After each stored attempt (run --once shows progress with it). */
  readonly attemptStored?: (caseId: string) => void;
  /** Once per stored final outcome (run --once collects them). */
  readonly verdict?: (outcome: FinalOutcome) => void;
  /**
   * Awaited after every final verdict, also one redelivered after a crash (the store then
   * already has it): alerting reads the stored state, so it must see each verdict.
   */
  readonly afterVerdict?: (caseId: string) => Promise<unknown>;
}

/** Everything the reporter's core reaches outside itself. */
export interface ReporterPorts {
  /** Re-probe requests on lumen.v1.reprobes; rotation cells that disagreed, for the planner. */
  readonly bus: Publisher;
  readonly store: ReporterStore;
  readonly clock: Clock;
  readonly log: Log;
  readonly tracer: CaseTracer;
  readonly metrics: ReporterMetrics;
  readonly events?: ReporterEvents;
}

/** The namespaces a caller may see (libs/access); undefined sees every namespace. */
export type { Scope };

/**
 * The API's reads; ResultsQuery (libs/store) is the real one. Every read takes the caller's
 * scope; a case the scope does not see is null, as if it did not exist.
 */
export interface ResultsReader {
  summary(scope: Scope): Promise<Omit<ApiSummary, 'scope'>>;
  outcomes(
    filter: {
      readonly namespace?: string;
      readonly policy?: string;
      readonly outcome?: string;
      readonly since?: Date;
      readonly until?: Date;
    },
    scope: Scope,
    page: { readonly limit: number; readonly cursor?: string },
  ): Promise<Page<OutcomeItem>>;
  caseDetail(
    caseId: string,
    scope: Scope,
    page: { readonly limit: number; readonly cursor?: string },
  ): Promise<CaseDetail | null>;
  attempts(
    caseId: string,
    scope: Scope,
    page: { readonly limit: number; readonly cursor?: string },
  ): Promise<Page<AttemptItem> | null>;
  /** The namespaces of a case's ends, when the scope sees the case. */
  caseEnds(
    caseId: string,
    scope: Scope,
  ): Promise<{ readonly source: string; readonly destination: string } | null>;
  coverage(scope: Scope, policy?: string): Promise<PolicyCoverage[]>;
  matrix(scope: Scope): Promise<MatrixCoverageAnswer | null>;
  namespaceMatrix(scope: Scope): Promise<NamespaceMatrix>;
  classMatrix(source: string, destination: string, scope: Scope): Promise<ClassMatrix | null>;
  regressions(scope: Scope, policy?: string): Promise<{ items: Regression[]; truncated: boolean }>;
  latency(
    scope: Scope,
    filter: { readonly namespace?: string; readonly policy?: string },
  ): Promise<LatencyStats>;
}
