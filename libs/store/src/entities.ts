import { EntitySchema } from 'typeorm';
import type { AttemptRecord, CaseRecord, Outcome, OutcomeRecord } from '#lumen/contracts';

export interface PlanGenerationRow {
  id: number;
  createdAt: Date;
  reason: string;
  caseCount: number;
}

/**
 * The rows behind the typed records of libs/contracts (CaseRecord, AttemptRecord,
 * OutcomeRecord). A row's JSON columns are checked against those schemas when CaseStore
 * reads it, so a typed record never holds what its type denies.
 */
export type CaseRow = CaseRecord & {
  // Derived from the JSON columns by CaseStore (caseIndexColumns), for filters and scoping.
  sourceNamespace?: string | null;
  destinationNamespace?: string | null;
  policy?: string | null;
  ruleDirection?: string | null;
  ruleIndex?: number | null;
};

export type AttemptRow = AttemptRecord & {
  /** Decided a failing or changed outcome: kept for the history's age, not only while newest. */
  retained?: boolean;
};

export type OutcomeRow = OutcomeRecord;

export interface OutcomeHistoryRow {
  id: number;
  caseId: string;
  outcome: Outcome;
  round: number;
  decidedAt: Date;
}

const json = { type: 'simple-json' as const };

export const PlanGenerationEntity = new EntitySchema<PlanGenerationRow>({
  name: 'PlanGeneration',
  tableName: 'plan_generations',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    createdAt: { type: Date, name: 'created_at' },
    reason: { type: String, length: 200 },
    caseCount: { type: Number, name: 'case_count' },
  },
});

export const CaseEntity = new EntitySchema<CaseRow>({
  name: 'Case',
  tableName: 'cases',
  columns: {
    caseId: { type: String, length: 16, primary: true, name: 'case_id' },
    generation: { type: Number },
    reason: { type: String, length: 40 },
    source: { ...json },
    destination: { ...json },
    port: { type: Number },
    protocol: { type: String, length: 8 },
    expected: { type: String, length: 8 },
    explanation: { ...json },
    rule: { ...json, nullable: true },
    changedAt: { type: Date, name: 'changed_at' },
    updatedAt: { type: Date, name: 'updated_at' },
    listenerKnown: { type: Boolean, name: 'listener_known', default: false },
    loopback: { type: Boolean, default: false },
    via: { ...json, nullable: true },
    family: { type: Number, nullable: true },
    traceparent: { type: String, length: 55, nullable: true },
    sourceNamespace: { type: String, length: 63, nullable: true, name: 'source_namespace' },
    destinationNamespace: {
      type: String,
      length: 63,
      nullable: true,
      name: 'destination_namespace',
    },
    policy: { type: String, length: 507, nullable: true },
    ruleDirection: { type: String, length: 8, nullable: true, name: 'rule_direction' },
    ruleIndex: { type: Number, nullable: true, name: 'rule_index' },
  },
});

export const AttemptEntity = new EntitySchema<AttemptRow>({
  name: 'ProbeAttempt',
  tableName: 'probe_attempts',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    caseId: { type: String, length: 16, name: 'case_id' },
    round: { type: Number },
    attempt: { type: Number },
    batchId: { type: String, length: 64, name: 'batch_id' },
    node: { type: String, length: 253 },
    observedAt: { type: Date, name: 'observed_at' },
    reachability: { type: String, length: 16 },
    basis: { type: String, length: 500 },
    evidence: { ...json, nullable: true },
    traceId: { type: String, length: 32, nullable: true, name: 'trace_id' },
    sourcePod: { type: String, length: 507, nullable: true, name: 'source_pod' },
    destinationPod: { type: String, length: 507, nullable: true, name: 'destination_pod' },
    retained: { type: Boolean, default: false },
  },
});

export const OutcomeEntity = new EntitySchema<OutcomeRow>({
  name: 'CaseOutcome',
  tableName: 'case_outcomes',
  columns: {
    caseId: { type: String, length: 16, primary: true, name: 'case_id' },
    outcome: { type: String, length: 16 },
    round: { type: Number },
    decidedAt: { type: Date, name: 'decided_at' },
    reason: { type: String, length: 2000 },
    attempts: { type: Number },
    enforcementLatencyMs: { type: Number, nullable: true, name: 'enforcement_latency_ms' },
    traceId: { type: String, length: 32, nullable: true, name: 'trace_id' },
    observed: { type: String, length: 16, nullable: true },
  },
});

export const OutcomeHistoryEntity = new EntitySchema<OutcomeHistoryRow>({
  name: 'CaseOutcomeHistory',
  tableName: 'case_outcome_history',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    caseId: { type: String, length: 16, name: 'case_id' },
    outcome: { type: String, length: 16 },
    round: { type: Number },
    decidedAt: { type: Date, name: 'decided_at' },
  },
});

export interface PolicyRulesRow {
  policy: string;
  generation: number;
  ingress: number[];
  egress: number[];
}

export const PolicyRulesEntity = new EntitySchema<PolicyRulesRow>({
  name: 'PolicyRules',
  tableName: 'policy_rules',
  columns: {
    policy: { type: String, length: 507, primary: true },
    generation: { type: Number },
    ingress: { ...json },
    egress: { ...json },
  },
});

export interface AlertRow {
  fingerprint: string;
  caseId: string;
  groupKey: string;
  status: string;
  severity: string;
  startsAt: Date;
  endsAt: Date | null;
  /** Comma-separated, with commas around: `,a,b,` (a LIKE finds one namespace). */
  namespaces: string;
  event: object;
}

export const AlertEntity = new EntitySchema<AlertRow>({
  name: 'Alert',
  tableName: 'alerts',
  columns: {
    fingerprint: { type: String, length: 16, primary: true },
    caseId: { type: String, length: 16, name: 'case_id' },
    groupKey: { type: String, length: 507, name: 'group_key' },
    status: { type: String, length: 16 },
    severity: { type: String, length: 16 },
    startsAt: { type: Date, name: 'starts_at' },
    endsAt: { type: Date, nullable: true, name: 'ends_at' },
    namespaces: { type: String, length: 200 },
    event: { ...json },
  },
});

export interface AlertOutboxRow {
  id: number;
  receiver: string;
  fingerprint: string;
  groupKey: string;
  status: string;
  event: object;
  createdAt: Date;
  nextAttemptAt: Date;
  attempts: number;
  deliveredAt: Date | null;
  lastError: string | null;
}

export const AlertOutboxEntity = new EntitySchema<AlertOutboxRow>({
  name: 'AlertOutbox',
  tableName: 'alert_outbox',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    receiver: { type: String, length: 63 },
    fingerprint: { type: String, length: 16 },
    groupKey: { type: String, length: 507, name: 'group_key' },
    status: { type: String, length: 16 },
    event: { ...json },
    createdAt: { type: Date, name: 'created_at' },
    nextAttemptAt: { type: Date, name: 'next_attempt_at' },
    attempts: { type: Number },
    deliveredAt: { type: Date, nullable: true, name: 'delivered_at' },
    lastError: { type: String, length: 500, nullable: true, name: 'last_error' },
  },
});

export interface MatrixCoverageRow {
  id: string;
  generation: number;
  report: object;
  receivedAt: Date;
}

export const MatrixCoverageEntity = new EntitySchema<MatrixCoverageRow>({
  name: 'MatrixCoverage',
  tableName: 'matrix_coverage',
  columns: {
    id: { type: String, length: 16, primary: true },
    generation: { type: Number },
    report: { ...json },
    receivedAt: { type: Date, name: 'received_at' },
  },
});

/** Rotation cells judged in blocks, counted per plan generation (ADR 0013). */
export interface RotationTallyRow {
  generation: number;
  cells: number;
  passed: number;
  inconclusive: number;
  mismatched: number;
  firstAt: Date;
  lastAt: Date;
}

export const RotationTallyEntity = new EntitySchema<RotationTallyRow>({
  name: 'RotationTally',
  tableName: 'rotation_tally',
  columns: {
    generation: { type: Number, primary: true },
    cells: { type: Number },
    passed: { type: Number },
    inconclusive: { type: Number },
    mismatched: { type: Number },
    firstAt: { type: Date, name: 'first_at' },
    lastAt: { type: Date, name: 'last_at' },
  },
});

export const ENTITIES = [
  RotationTallyEntity,
  MatrixCoverageEntity,
  PolicyRulesEntity,
  AlertEntity,
  AlertOutboxEntity,
  PlanGenerationEntity,
  CaseEntity,
  AttemptEntity,
  OutcomeEntity,
  OutcomeHistoryEntity,
];
