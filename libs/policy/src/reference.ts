/**
 * The reference evaluator: a literal reading of the NetworkPolicy v1 specification,
 * written to be obviously correct rather than fast. It shares no matching code with the
 * compiled engine (selectors, ports, CIDRs and defaulting are all done here again, in a
 * different way) so that property tests comparing the two can catch a mistake in either.
 *
 * It expects policies that passed {@link validatePolicy}.
 */
import { parseIp } from './ip.js';
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
  type RuleRef,
  type SideExplanation,
  type Verdict,
} from './verdict.js';

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

export class ReferenceEvaluator {
  private readonly pods: ReadonlyMap<string, Pod>;
  private readonly namespaces: ReadonlyMap<string, Labels>;

  constructor(private readonly cluster: Cluster) {
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
    return {
      isolated,
      policies: policies.map(policyKey).sort(),
      allowedBy: allowedBy.sort(compareRuleRefs),
      allowed: !isolated || allowedBy.length > 0,
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
