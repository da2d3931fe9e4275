import type {
  ApiCaseSide,
  AttemptItem,
  CaseDetail,
  CaseItem,
  Explanation,
  OutcomeItem,
} from '#lumen/contracts';
import { hideAddresses, visiblePolicy, type Scope } from '#lumen/access';

/*
 * What a token limited to namespaces sees of a case with one end outside them (issue 15):
 * a tenant may write a rule whose peer is another tenant's namespace, and Lumen then
 * probes from or to that namespace's pods. The tenant learns whether its policy holds,
 * never who is on the other side: that end is its namespace only, with no pod names,
 * labels, UIDs, IPs or nodes, its side of the explanation keeps only whether it isolates
 * and allows, policies owned there are not named, and no nmap command line (which lists
 * every target of a batch, whoever owns them) is shown to a limited token at all.
 */

function hiddenSide(side: ApiCaseSide): ApiCaseSide {
  return { namespace: side.namespace };
}

function hiddenExplanationSide(side: Explanation['egress']): Explanation['egress'] {
  return {
    isolated: side.isolated,
    allowed: side.allowed,
    ...(side.tier ? { tier: side.tier } : {}),
    policies: [],
    allowedBy: [],
    hidden: true,
  };
}

/** Which ends of a case lie outside a limited scope. */
export interface ForeignEnds {
  readonly source: boolean;
  readonly destination: boolean;
}

/** Which ends of a case, by their namespaces, lie outside the scope (none for an unlimited one). */
export function foreignEnds(
  ends: { readonly source: string; readonly destination: string },
  scope: Scope,
): ForeignEnds {
  return scope === undefined
    ? { source: false, destination: false }
    : { source: !scope.includes(ends.source), destination: !scope.includes(ends.destination) };
}

const namespacesOf = (c: {
  source: ApiCaseSide;
  destination: ApiCaseSide;
}): { source: string; destination: string } => ({
  source: c.source.namespace,
  destination: c.destination.namespace,
});

export function outcomeView(item: OutcomeItem, scope: Scope): OutcomeItem {
  if (scope === undefined) return item;
  const foreign = foreignEnds(namespacesOf(item), scope);
  const either = foreign.source || foreign.destination;
  return {
    ...item,
    source: foreign.source ? hiddenSide(item.source) : item.source,
    destination: foreign.destination ? hiddenSide(item.destination) : item.destination,
    policy: visiblePolicy(item.policy, scope) ? item.policy : null,
    rule: visiblePolicy(item.rule?.policy, scope) ? item.rule : null,
    reason: either ? hideAddresses(item.reason) : item.reason,
  };
}

export function caseView(item: CaseItem, scope: Scope): CaseItem {
  if (scope === undefined) return item;
  const foreign = foreignEnds(namespacesOf(item), scope);
  return {
    ...item,
    source: foreign.source ? hiddenSide(item.source) : item.source,
    destination: foreign.destination ? hiddenSide(item.destination) : item.destination,
    explanation: {
      ...item.explanation,
      // Egress is decided at the source, ingress at the destination.
      egress: foreign.source
        ? hiddenExplanationSide(item.explanation.egress)
        : item.explanation.egress,
      ingress: foreign.destination
        ? hiddenExplanationSide(item.explanation.ingress)
        : item.explanation.ingress,
    },
    policy: visiblePolicy(item.policy, scope) ? item.policy : null,
    rule: visiblePolicy(item.rule?.policy, scope) ? item.rule : null,
  };
}

/** An attempt of a case the scope sees, with the case's ends known to be foreign or not. */
export function attemptView(item: AttemptItem, scope: Scope, foreign: ForeignEnds): AttemptItem {
  if (scope === undefined) return item;
  const either = foreign.source || foreign.destination;
  const evidence = item.evidence ? { ...item.evidence } : null;
  if (evidence) delete evidence.command;
  return {
    ...item,
    // The prober that probed runs on the source pod's node.
    node: foreign.source ? null : item.node,
    sourcePod: foreign.source ? null : item.sourcePod,
    destinationPod: foreign.destination ? null : item.destinationPod,
    basis: either ? hideAddresses(item.basis) : item.basis,
    evidence,
  };
}

export function caseDetailView(detail: CaseDetail, scope: Scope): CaseDetail {
  if (scope === undefined) return detail;
  const foreign = foreignEnds(namespacesOf(detail.case), scope);
  const either = foreign.source || foreign.destination;
  return {
    case: caseView(detail.case, scope),
    outcome:
      detail.outcome && either
        ? { ...detail.outcome, reason: hideAddresses(detail.outcome.reason) }
        : detail.outcome,
    history: detail.history,
    attempts: {
      ...detail.attempts,
      items: detail.attempts.items.map((a) => attemptView(a, scope, foreign)),
    },
  };
}
