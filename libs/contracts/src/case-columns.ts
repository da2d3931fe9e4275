import type { RuleRef } from './test-case/index.js';

/** The plain columns derived from a case's JSON: what filters, scoping and coverage use. */
export interface CaseIndexColumns {
  sourceNamespace: string | null;
  destinationNamespace: string | null;
  /** The rule's policy, or for a case no rule names, the policy that isolates it. */
  policy: string | null;
  ruleDirection: RuleRef['direction'] | null;
  ruleIndex: number | null;
}

export function caseIndexColumns(row: {
  readonly source: { readonly namespace: string };
  readonly destination: { readonly namespace: string };
  readonly rule: RuleRef | null;
  readonly explanation: {
    readonly ingress: { readonly policies: readonly string[] };
    readonly egress: { readonly policies: readonly string[] };
  };
}): CaseIndexColumns {
  return {
    sourceNamespace: row.source.namespace,
    destinationNamespace: row.destination.namespace,
    policy:
      row.rule?.policy ??
      row.explanation.ingress.policies[0] ??
      row.explanation.egress.policies[0] ??
      null,
    ruleDirection: row.rule?.direction ?? null,
    ruleIndex: row.rule?.index ?? null,
  };
}
