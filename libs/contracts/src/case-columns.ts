/** The plain columns derived from a case's JSON: what filters, scoping and coverage use. */
export interface CaseIndexColumns {
  sourceNamespace: string | null;
  destinationNamespace: string | null;
  /** The rule's policy, or for a case no rule names, the policy that isolates it. */
  policy: string | null;
  ruleDirection: string | null;
  ruleIndex: number | null;
}

export function caseIndexColumns(row: {
  readonly source: object;
  readonly destination: object;
  readonly rule: object | null;
  readonly explanation: object;
}): CaseIndexColumns {
  const rule = row.rule as { policy?: string; direction?: string; index?: number } | null;
  const explanation = row.explanation as {
    ingress?: { policies?: string[] };
    egress?: { policies?: string[] };
  };
  return {
    sourceNamespace: (row.source as { namespace?: string }).namespace ?? null,
    destinationNamespace: (row.destination as { namespace?: string }).namespace ?? null,
    policy:
      rule?.policy ??
      explanation.ingress?.policies?.[0] ??
      explanation.egress?.policies?.[0] ??
      null,
    ruleDirection: rule?.direction ?? null,
    ruleIndex: rule?.index ?? null,
  };
}
