/**
 * The reference evaluator: a literal reading of the NetworkPolicy v1 specification,
 * written to be obviously correct rather than fast. It shares no matching code with the
 * compiled engine (selectors, ports, CIDRs and defaulting are all done here again, in a
 * different way) so that property tests comparing the two can catch a mistake in either.
 *
 * It expects policies that passed {@link validatePolicy}.
 */
import { parseIp, type Cidr } from './ip.js';
import {
  validateClusterPolicy,
  type ClusterPeer,
  type ClusterPort,
  type ClusterRule,
  type Tier,
  type ValidClusterPolicy,
} from './tiers.js';
import {
  NAMESPACE_NAME_LABEL,
  policyKey,
  type Cluster,
  type Connection,
  type Direction,
  type LabelSelector,
  type LabelSelectorRequirement,
  type Labels,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
  type Pod,
} from './types.js';
import {
  combineSides,
  compareRuleRefs,
  type DecidingTier,
  type RuleRef,
  type SideExplanation,
  type TierRuleRef,
  type Verdict,
} from './verdict.js';

/** One way an implementation may decide a side through the tiers. */
interface TierPath {
  readonly allowed: boolean;
  readonly tier: DecidingTier;
  readonly decidedBy?: TierRuleRef;
  readonly passedBy: readonly TierRuleRef[];
}

function requirementHolds(requirement: LabelSelectorRequirement, labels: Labels): boolean {
  const { key, operator, values = [] } = requirement;
  const present = Object.keys(labels).includes(key);
  const inValues = present && values.includes(labels[key] as string);
  switch (operator) {
    case 'In':
      return inValues;
    case 'NotIn':
      return !inValues;
    case 'Exists':
      return present;
    default:
      return !present; // DoesNotExist
  }
}

function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  const labelsHold = Object.entries(selector.matchLabels ?? {}).every(
    ([key, value]) => Object.keys(labels).includes(key) && labels[key] === value,
  );
  return labelsHold && (selector.matchExpressions ?? []).every((r) => requirementHolds(r, labels));
}

function bitString(ip: string): string | undefined {
  const address = parseIp(ip);
  if (!address) return undefined;
  const width = address.family === 4 ? 32 : 128;
  return `${address.family}:${address.value.toString(2).padStart(width, '0')}`;
}

function inCidr(ip: string, cidr: string): boolean {
  const [network = '', prefix = '0'] = cidr.split('/');
  const ipBits = bitString(ip);
  const networkBits = bitString(network);
  if (!ipBits || !networkBits) return false;
  const length = 2 + Number(prefix); // the "4:" or "6:" family tag counts too
  return ipBits.slice(0, length) === networkBits.slice(0, length);
}

function inParsedCidr(ip: string, cidr: Cidr): boolean {
  const ipBits = bitString(ip);
  const width = cidr.family === 4 ? 32 : 128;
  const networkBits = `${cidr.family}:${cidr.value.toString(2).padStart(width, '0')}`;
  if (!ipBits) return false;
  const length = 2 + cidr.prefix;
  return ipBits.slice(0, length) === networkBits.slice(0, length);
}

export class ReferenceEvaluator {
  private readonly pods: ReadonlyMap<string, Pod>;
  private readonly namespaces: ReadonlyMap<string, Labels>;
  /** The valid cluster-scoped policies; invalid ones take no part, as invalid NetworkPolicies. */
  private readonly clusterPolicies: readonly ValidClusterPolicy[];

  /**
   * `baselineBeforeNetworkPolicies` breaks the tier order on purpose (the lab's
   * `baseline-over-networkpolicy` fault: a CNI that asks the Baseline tier before the
   * NetworkPolicies). Lumen's own verdicts never set it.
   */
  constructor(
    private readonly cluster: Cluster,
    private readonly options: { readonly baselineBeforeNetworkPolicies?: boolean } = {},
  ) {
    this.clusterPolicies = (cluster.clusterPolicies ?? []).flatMap((manifest) => {
      const result = validateClusterPolicy(manifest);
      return result.ok ? [result.policy] : [];
    });
    this.pods = new Map(cluster.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
    this.namespaces = new Map(
      cluster.namespaces.map((n) => [n.name, { ...n.labels, [NAMESPACE_NAME_LABEL]: n.name }]),
    );
  }

  private namespaceLabels(name: string): Labels {
    return this.namespaces.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  }

  private pod(namespace: string, name: string): Pod {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`no pod ${namespace}/${name}`);
    return pod;
  }

  private static appliesTo(policy: NetworkPolicy, direction: Direction): boolean {
    const { policyTypes, egress } = policy.spec;
    const types =
      policyTypes ?? (egress && egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
    return types.includes(direction === 'ingress' ? 'Ingress' : 'Egress');
  }

  private static selects(policy: NetworkPolicy, pod: Pod): boolean {
    return (
      !pod.hostNetwork &&
      pod.namespace === policy.metadata.namespace &&
      selectorMatches(policy.spec.podSelector ?? {}, pod.labels)
    );
  }

  private peerMatches(policy: NetworkPolicy, peer: NetworkPolicyPeer, other: Pod): boolean {
    if (peer.ipBlock) {
      const { cidr, except = [] } = peer.ipBlock;
      return (
        other.ip !== undefined &&
        inCidr(other.ip, cidr) &&
        !except.some((hole) => inCidr(other.ip as string, hole))
      );
    }
    if (other.hostNetwork) return false;
    const namespaceMatches = peer.namespaceSelector
      ? selectorMatches(peer.namespaceSelector, this.namespaceLabels(other.namespace))
      : other.namespace === policy.metadata.namespace;
    const podMatches = peer.podSelector ? selectorMatches(peer.podSelector, other.labels) : true;
    return namespaceMatches && podMatches;
  }

  private static portMatches(
    entry: NetworkPolicyPort,
    connection: Connection,
    destination: Pod,
  ): boolean {
    if ((entry.protocol ?? 'TCP') !== connection.protocol) return false;
    if (entry.port === undefined) return true;
    if (typeof entry.port === 'string') {
      return destination.ports.some(
        (p) =>
          p.name === entry.port && p.protocol === connection.protocol && p.port === connection.port,
      );
    }
    return connection.port >= entry.port && connection.port <= (entry.endPort ?? entry.port);
  }

  private side(
    direction: Direction,
    pod: Pod,
    other: Pod,
    connection: Connection,
  ): SideExplanation {
    const destination = direction === 'ingress' ? pod : other;
    const policies = this.cluster.policies.filter(
      (p) => ReferenceEvaluator.selects(p, pod) && ReferenceEvaluator.appliesTo(p, direction),
    );
    const allowedBy: RuleRef[] = [];
    for (const policy of policies) {
      const rules =
        direction === 'ingress'
          ? (policy.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports }))
          : (policy.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      rules.forEach(({ peers, ports = [] }, index) => {
        const peerOk =
          !peers ||
          peers.length === 0 ||
          peers.some((peer) => this.peerMatches(policy, peer, other));
        const portOk =
          ports.length === 0 ||
          ports.some((e) => ReferenceEvaluator.portMatches(e, connection, destination));
        if (peerOk && portOk) allowedBy.push({ policy: policyKey(policy), direction, index });
      });
    }
    const isolated = policies.length > 0;
    const networkPolicies: SideExplanation = {
      isolated,
      policies: policies.map(policyKey).sort(),
      allowedBy: allowedBy.sort(compareRuleRefs),
      allowed: !isolated || allowedBy.length > 0,
    };
    return this.throughTiers(direction, pod, other, connection, networkPolicies);
  }

  // ---- the Admin and Baseline tiers ------------------------------------------------

  private clusterSubject(policy: ValidClusterPolicy, pod: Pod): boolean {
    if (pod.hostNetwork) return false;
    const { namespaceSelector, podSelector } = policy.subject;
    return (
      selectorMatches(namespaceSelector, this.namespaceLabels(pod.namespace)) &&
      (podSelector === undefined || selectorMatches(podSelector, pod.labels))
    );
  }

  private clusterPeer(peer: ClusterPeer, other: Pod): boolean {
    switch (peer.kind) {
      case 'all':
        return true;
      case 'namespaces':
        return (
          !other.hostNetwork &&
          selectorMatches(peer.namespaceSelector, this.namespaceLabels(other.namespace))
        );
      case 'pods':
        return (
          !other.hostNetwork &&
          selectorMatches(peer.namespaceSelector, this.namespaceLabels(other.namespace)) &&
          selectorMatches(peer.podSelector, other.labels)
        );
      case 'networks':
        return (
          other.ip !== undefined && peer.cidrs.some((c) => inParsedCidr(other.ip as string, c))
        );
      default:
        // Node IPs and DNS names: no pod-to-pod connection goes to one.
        return false;
    }
  }

  private static clusterPort(
    entry: ClusterPort,
    connection: Connection,
    destination: Pod,
  ): boolean {
    if (entry.name !== undefined)
      return destination.ports.some(
        (p) =>
          p.name === entry.name && p.port === connection.port && p.protocol === connection.protocol,
      );
    if (entry.protocol !== connection.protocol) return false;
    if (entry.port === undefined) return true;
    return connection.port >= entry.port && connection.port <= (entry.endPort ?? entry.port);
  }

  private clusterRuleMatches(
    rule: ClusterRule,
    other: Pod,
    connection: Connection,
    destination: Pod,
  ): boolean {
    const peerOk = rule.peers.some((peer) => this.clusterPeer(peer, other));
    const portOk =
      rule.ports === 'any' ||
      rule.ports.some((e) => ReferenceEvaluator.clusterPort(e, connection, destination));
    return peerOk && portOk;
  }

  /**
   * The side through the tiers: Admin, then the NetworkPolicies (final for a pod they
   * isolate), then Baseline, then default allow. Every way an implementation may take
   * through equal priorities is followed; the first (policies by name) explains.
   */
  private throughTiers(
    direction: Direction,
    pod: Pod,
    other: Pod,
    connection: Connection,
    networkPolicies: SideExplanation,
  ): SideExplanation {
    const destination = direction === 'ingress' ? pod : other;
    const relevant = this.clusterPolicies.filter(
      (p) => this.clusterSubject(p, pod) && p.rules.some((r) => r.direction === direction),
    );
    if (relevant.length === 0) return networkPolicies;
    const firstMatch = (policy: ValidClusterPolicy): ClusterRule | undefined =>
      policy.rules
        .filter((r) => r.direction === direction)
        .find((r) => this.clusterRuleMatches(r, other, connection, destination));
    const ref = (policy: ValidClusterPolicy, rule: ClusterRule): TierRuleRef => ({
      tier: policy.tier,
      policy: policy.key,
      priority: policy.priority,
      direction,
      index: rule.index,
      ...(rule.name === undefined ? {} : { name: rule.name }),
      action: rule.action,
      ...(rule.failClosed ? { failClosed: true as const } : {}),
    });
    const overlaps: string[] = [];
    const networkPoliciesOr = (
      passedBy: readonly TierRuleRef[],
      otherwise: () => TierPath[],
    ): TierPath[] =>
      networkPolicies.isolated
        ? [{ allowed: networkPolicies.allowedBy.length > 0, tier: 'NetworkPolicy', passedBy }]
        : otherwise();
    const byDefault = (passedBy: readonly TierRuleRef[]): TierPath[] => [
      { allowed: true, tier: 'default', passedBy },
    ];
    const after = (tier: Tier, passedBy: readonly TierRuleRef[]): TierPath[] => {
      if (this.options.baselineBeforeNetworkPolicies)
        return tier === 'Admin'
          ? walk('Baseline', passedBy)
          : networkPoliciesOr(passedBy, () => byDefault(passedBy));
      return tier === 'Admin'
        ? networkPoliciesOr(passedBy, () => walk('Baseline', passedBy))
        : byDefault(passedBy);
    };
    const walk = (tier: Tier, passedBy: readonly TierRuleRef[]): TierPath[] => {
      const inTier = relevant.filter((p) => p.tier === tier);
      const priorities = [...new Set(inTier.map((p) => p.priority))].sort((a, b) => a - b);
      for (const priority of priorities) {
        const matching = inTier
          .filter((p) => p.priority === priority)
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
          .flatMap((policy) => {
            const rule = firstMatch(policy);
            return rule ? [ref(policy, rule)] : [];
          });
        if (matching.length === 0) continue;
        if (new Set(matching.map((m) => m.action)).size > 1) {
          const note = `${tier} tier priority ${priority}: ${matching.map((m) => `${m.policy} ${m.action}s`).join(', ')}`;
          if (!overlaps.includes(note)) overlaps.push(note);
        }
        return matching.flatMap((rule): TierPath[] =>
          rule.action === 'Pass'
            ? after(tier, [...passedBy, rule])
            : [{ allowed: rule.action === 'Accept', tier, decidedBy: rule, passedBy }],
        );
      }
      return after(tier, passedBy);
    };
    const paths = walk('Admin', []);
    const chosen = paths[0] as TierPath;
    const ambiguous = new Set(paths.map((p) => p.allowed)).size > 1;
    return {
      ...networkPolicies,
      allowed: chosen.allowed,
      tier: chosen.tier,
      ...(chosen.decidedBy ? { decidedBy: chosen.decidedBy } : {}),
      ...(chosen.passedBy.length > 0 ? { passedBy: chosen.passedBy } : {}),
      ...(ambiguous ? { ambiguous: overlaps.join('; ') } : {}),
    };
  }

  verdict(connection: Connection): Verdict {
    const source = this.pod(connection.from.namespace, connection.from.name);
    const destination = this.pod(connection.to.namespace, connection.to.name);
    const egress = this.side('egress', source, destination, connection);
    const ingress = this.side('ingress', destination, source, connection);
    return combineSides(egress, ingress, {
      source: source.hostNetwork,
      destination: destination.hostNetwork,
    });
  }
}
