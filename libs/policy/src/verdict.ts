import type { Tier, TierAction } from './tiers.js';
import type { Direction } from './types.js';

/** A rule of a policy, by position: `spec.<direction>[index]` of `policy` ("ns/name"). */
export interface RuleRef {
  readonly policy: string;
  readonly direction: Direction;
  readonly index: number;
}

/** A rule of a cluster-scoped policy, as an explanation names it. */
export interface TierRuleRef {
  readonly tier: Tier;
  /** `Kind/name`, e.g. `ClusterNetworkPolicy/isolate-tenants`. */
  readonly policy: string;
  readonly priority: number;
  readonly direction: Direction;
  readonly index: number;
  readonly name?: string;
  readonly action: TierAction;
  /** The rule names a peer Lumen does not know, and so fails closed. */
  readonly failClosed?: true;
}

/** The tier whose decision stands for one side. */
export type DecidingTier = 'Admin' | 'NetworkPolicy' | 'Baseline' | 'default';

/** What one side of a connection (egress at the source, ingress at the destination) says. */
export interface SideExplanation {
  /** Some policy selects the pod for this direction, so only listed traffic may pass. */
  readonly isolated: boolean;
  /** The policies ("ns/name", sorted) that select the pod for this direction. */
  readonly policies: readonly string[];
  /** The rules that admit the connection (sorted); empty when it is denied or not isolated. */
  readonly allowedBy: readonly RuleRef[];
  /** The side's decision, through every tier. */
  readonly allowed: boolean;
  /**
   * Present when a cluster-scoped policy has rules for the pod in this direction: the tier
   * that decided (`isolated`, `policies` and `allowedBy` above are the NetworkPolicy tier's
   * view, which stands only when this says NetworkPolicy).
   */
  readonly tier?: DecidingTier;
  /** The Accept or Deny rule of the Admin or Baseline tier that decided. */
  readonly decidedBy?: TierRuleRef;
  /** The Pass rules that handed the decision on to a later tier, in order. */
  readonly passedBy?: readonly TierRuleRef[];
  /**
   * Policies of one tier at one priority decide this side differently, and the spec lets
   * an implementation apply either: the side may go either way.
   */
  readonly ambiguous?: string;
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
  /**
   * Why the connection's fate is implementation-defined (overlapping policies at equal
   * priority in one tier): then `allowed` is one possible answer, never an expectation.
   */
  readonly ambiguous?: string;
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

export function describeTierRule(rule: TierRuleRef): string {
  return `${rule.tier} tier ${rule.policy} (priority ${rule.priority}) ${rule.direction}[${rule.index}]${rule.name ? ` "${rule.name}"` : ''}: ${rule.action}${rule.failClosed ? ' (fails closed: a peer of a kind Lumen does not know)' : ''}`;
}

/** A one-line, human explanation of a verdict. */
export function describeVerdict(verdict: Verdict): string {
  const { egress, ingress } = verdict.explanation;
  const side = (name: string, s: SideExplanation): string => {
    if (s.tier !== undefined) {
      const passed = (s.passedBy ?? []).map((r) => `passed by ${describeTierRule(r)}; `).join('');
      const ambiguous = s.ambiguous ? ` (ambiguous: ${s.ambiguous})` : '';
      if (s.decidedBy)
        return `${name}: ${passed}${s.allowed ? 'accepted' : 'denied'} by ${describeTierRule(s.decidedBy)}${ambiguous}`;
      if (s.tier === 'default')
        return `${name}: ${passed}no tier decides, allowed by default${ambiguous}`;
      if (s.tier === 'NetworkPolicy')
        return `${name}: ${passed}${sideOfNetworkPolicies(s)}${ambiguous}`;
    }
    return sideOfNetworkPolicies(s, name);
  };
  return `${side('egress', egress)}; ${side('ingress', ingress)}${verdict.ambiguous ? `; ambiguous: ${verdict.ambiguous}` : ''}`;
}

function sideOfNetworkPolicies(s: SideExplanation, name?: string): string {
  const prefix = name ? `${name}: ` : '';
  if (!s.isolated) return `${prefix}not isolated`;
  if (s.allowedBy.length > 0) {
    return `${prefix}allowed by ${s.allowedBy.map((r) => `${r.policy} ${r.direction}[${r.index}]`).join(', ')}`;
  }
  return `${prefix}isolated by ${s.policies.join(', ')} and no rule matched`;
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
  // A side that is ambiguous may go either way; the connection is ambiguous when the
  // sides' possible answers combine into both an allowed and a denied one.
  const mayAllow = (s: SideExplanation): boolean => s.allowed || s.ambiguous !== undefined;
  const mayDeny = (s: SideExplanation): boolean => !s.allowed || s.ambiguous !== undefined;
  const ambiguous =
    mayAllow(egress) && mayAllow(ingress) && (mayDeny(egress) || mayDeny(ingress))
      ? [egress.ambiguous, ingress.ambiguous].filter((a) => a !== undefined).join('; ')
      : '';
  return {
    allowed: egress.allowed && ingress.allowed,
    explanation: { egress, ingress, ...(unprobeable ? { unprobeable } : {}) },
    ...(ambiguous ? { ambiguous } : {}),
  };
}
