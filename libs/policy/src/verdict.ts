import type { Direction } from './types.js';

/** A rule of a policy, by position: `spec.<direction>[index]` of `policy` ("ns/name"). */
export interface RuleRef {
  readonly policy: string;
  readonly direction: Direction;
  readonly index: number;
}

/** What one side of a connection (egress at the source, ingress at the destination) says. */
export interface SideExplanation {
  /** Some policy selects the pod for this direction, so only listed traffic may pass. */
  readonly isolated: boolean;
  /** The policies ("ns/name", sorted) that select the pod for this direction. */
  readonly policies: readonly string[];
  /** The rules that admit the connection (sorted); empty when it is denied or not isolated. */
  readonly allowedBy: readonly RuleRef[];
  readonly allowed: boolean;
}

export interface Explanation {
  readonly egress: SideExplanation;
  readonly ingress: SideExplanation;
  /** Why the connection cannot be observed as the policies describe it, if it cannot. */
  readonly unprobeable?: string;
}

export interface Verdict {
  readonly allowed: boolean;
  readonly explanation: Explanation;
}

export function compareRuleRefs(a: RuleRef, b: RuleRef): number {
  if (a.policy !== b.policy) return a.policy < b.policy ? -1 : 1;
  if (a.direction !== b.direction) return a.direction < b.direction ? -1 : 1;
  return a.index - b.index;
}

export const HOST_NETWORK_SOURCE =
  'the source pod uses hostNetwork: policies never select it and Lumen cannot probe from it';
export const HOST_NETWORK_DESTINATION =
  'the destination pod uses hostNetwork: its traffic is node traffic, which pod policies do not govern';

/** A one-line, human explanation of a verdict. */
export function describeVerdict(verdict: Verdict): string {
  const { egress, ingress } = verdict.explanation;
  const side = (name: string, s: SideExplanation): string => {
    if (!s.isolated) return `${name}: not isolated`;
    if (s.allowed) {
      return `${name}: allowed by ${s.allowedBy.map((r) => `${r.policy} ${r.direction}[${r.index}]`).join(', ')}`;
    }
    return `${name}: isolated by ${s.policies.join(', ')} and no rule matched`;
  };
  return `${side('egress', egress)}; ${side('ingress', ingress)}`;
}

/** Both sides together: allowed only when egress AND ingress allow; hostNetwork noted. */
export function combineSides(
  egress: SideExplanation,
  ingress: SideExplanation,
  hostNetwork: { readonly source: boolean; readonly destination: boolean },
): Verdict {
  const unprobeable = hostNetwork.source
    ? HOST_NETWORK_SOURCE
    : hostNetwork.destination
      ? HOST_NETWORK_DESTINATION
      : undefined;
  return {
    allowed: egress.allowed && ingress.allowed,
    explanation: { egress, ingress, ...(unprobeable ? { unprobeable } : {}) },
  };
}
