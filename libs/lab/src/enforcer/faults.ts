import {
  NAMESPACE_NAME_LABEL,
  ReferenceEvaluator,
  compileSelector,
  type Cluster,
  type ClusterPolicyManifest,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
} from '#lumen/policy';

/** Ways the lab's enforcer can be broken, each reproducing a documented CNI failure. */
export type Fault =
  | { readonly kind: 'and-as-or' }
  | { readonly kind: 'and-in-own-namespace' }
  | { readonly kind: 'ignore-egress' }
  | { readonly kind: 'ignore-named-ports' }
  | { readonly kind: 'ignore-endport' }
  | { readonly kind: 'ignore-ipblock-pods' }
  | { readonly kind: 'reject-instead-of-drop' }
  | { readonly kind: 'pass-as-accept' }
  | { readonly kind: 'ignore-admin-tier' }
  | { readonly kind: 'priority-reversed' }
  | { readonly kind: 'baseline-over-networkpolicy' }
  | { readonly kind: 'service-bypass' }
  | { readonly kind: 'hairpin-deny' }
  | { readonly kind: 'ignore-ipv6' }
  | { readonly kind: 'delay'; readonly seconds: number }
  | { readonly kind: 'flaky'; readonly ratio: number }
  | { readonly kind: 'forget-on-restart'; readonly seconds: number };

/**
 * Faults of the path through a Service, not of the policies' meaning: `service-bypass`
 * applies no policy to Service traffic (Kube-OVN #3347 broke that path), `hairpin-deny`
 * drops a pod's traffic to itself through its own Service (Antrea #5681).
 */
export const SERVICE_PATH_FAULTS = ['service-bypass', 'hairpin-deny'] as const;

/** The fault modes without a parameter: each breaks the same way every time. */
export const DETERMINISTIC_FAULTS = [
  'and-as-or',
  'and-in-own-namespace',
  'ignore-egress',
  'ignore-named-ports',
  'ignore-endport',
  'ignore-ipblock-pods',
  'reject-instead-of-drop',
  // The cluster-scoped tiers (ClusterNetworkPolicy, AdminNetworkPolicy, Baseline…):
  'pass-as-accept',
  'ignore-admin-tier',
  'priority-reversed',
  'baseline-over-networkpolicy',
  // The Service path (kube-proxy's translation): the policies' semantics are untouched.
  ...SERVICE_PATH_FAULTS,
  // Policies enforced over IPv4 only: a dual-stack pod is open over IPv6.
  'ignore-ipv6',
] as const;

export const FAULT_MODES = [
  ...DETERMINISTIC_FAULTS,
  'delay=<seconds>',
  'flaky=<ratio>',
  'forget-on-restart[=<seconds>]',
] as const;

function number(
  text: string | undefined,
  mode: string,
  check: (n: number) => boolean,
  what: string,
): number {
  const value = Number(text);
  if (text === undefined || text === '' || !Number.isFinite(value) || !check(value)) {
    throw new Error(`fault ${mode}=${text ?? ''}: ${what}`);
  }
  return value;
}

/** Parses a fault mode as given on the command line; the error lists the valid ones. */
export function parseFault(text: string): Fault {
  const [mode = '', argument] = text.split('=', 2);
  if ((DETERMINISTIC_FAULTS as readonly string[]).includes(mode) && argument === undefined)
    return { kind: mode as (typeof DETERMINISTIC_FAULTS)[number] };
  if (mode === 'delay')
    return {
      kind: 'delay',
      seconds: number(argument, mode, (n) => n >= 0 && n <= 600, 'give seconds from 0 to 600'),
    };
  if (mode === 'flaky')
    return {
      kind: 'flaky',
      ratio: number(argument, mode, (n) => n > 0 && n < 1, 'give a ratio between 0 and 1'),
    };
  if (mode === 'forget-on-restart') {
    return {
      kind: 'forget-on-restart',
      seconds:
        argument === undefined
          ? 10
          : number(argument, mode, (n) => n > 0 && n <= 600, 'give seconds from 1 to 600'),
    };
  }
  throw new Error(`unknown fault "${text}"; expected one of: ${FAULT_MODES.join(', ')}`);
}

export function formatFault(fault: Fault): string {
  switch (fault.kind) {
    case 'delay':
      return `delay=${fault.seconds}`;
    case 'flaky':
      return `flaky=${fault.ratio}`;
    case 'forget-on-restart':
      return `forget-on-restart=${fault.seconds}`;
    default:
      return fault.kind;
  }
}

type Rule = {
  peers: readonly NetworkPolicyPeer[] | undefined;
  ports: readonly NetworkPolicyPort[] | undefined;
};

/** Peers of a rule after a fault; a rule whose every peer is gone admits nothing and goes. */
function rewriteRules(
  rules: readonly Rule[],
  peer: (p: NetworkPolicyPeer) => NetworkPolicyPeer[],
  port: (p: NetworkPolicyPort) => NetworkPolicyPort[],
): Rule[] {
  return rules.flatMap((rule) => {
    const peers = rule.peers?.flatMap(peer);
    const ports = rule.ports?.flatMap(port);
    const lostAllPeers = (rule.peers?.length ?? 0) > 0 && peers?.length === 0;
    const lostAllPorts = (rule.ports?.length ?? 0) > 0 && ports?.length === 0;
    return lostAllPeers || lostAllPorts ? [] : [{ peers, ports }];
  });
}

/**
 * The policies as a faulty CNI reads them. Only the faults that change which connections
 * are allowed rewrite policies; the others change how denial looks or when it happens.
 */
export function faultedCluster(cluster: Cluster, faults: readonly Fault[]): Cluster {
  const kinds = new Set(faults.map((f) => f.kind));
  const namespaceLabels = new Map(
    cluster.namespaces.map((n) => [n.name, { ...n.labels, [NAMESPACE_NAME_LABEL]: n.name }]),
  );
  const peerFault =
    (policy: NetworkPolicy) =>
    (peer: NetworkPolicyPeer): NetworkPolicyPeer[] => {
      if (peer.ipBlock) return kinds.has('ignore-ipblock-pods') ? [] : [peer];
      if (!peer.namespaceSelector || !peer.podSelector) return [peer];
      if (kinds.has('and-as-or'))
        return [{ namespaceSelector: peer.namespaceSelector }, { podSelector: peer.podSelector }];
      if (kinds.has('and-in-own-namespace')) {
        const own = namespaceLabels.get(policy.metadata.namespace) ?? {};
        return compileSelector(peer.namespaceSelector).matches(own)
          ? [{ podSelector: peer.podSelector }]
          : [];
      }
      return [peer];
    };
  const portFault = (port: NetworkPolicyPort): NetworkPolicyPort[] => {
    if (typeof port.port === 'string' && kinds.has('ignore-named-ports')) return [];
    if (port.endPort !== undefined && kinds.has('ignore-endport'))
      return [{ ...(port.protocol ? { protocol: port.protocol } : {}), port: port.port }];
    return [port];
  };
  const policies = cluster.policies.flatMap((policy): NetworkPolicy[] => {
    const { spec } = policy;
    // Defaulting is frozen first: a rewrite that empties `egress` must not turn egress isolation off.
    const types =
      spec.policyTypes ??
      (spec.egress && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
    const effective = kinds.has('ignore-egress') ? types.filter((t) => t !== 'Egress') : types;
    if (effective.length === 0) return [];
    const ingress = rewriteRules(
      (spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })),
      peerFault(policy),
      portFault,
    );
    const egress = rewriteRules(
      (spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports })),
      peerFault(policy),
      portFault,
    );
    const strip = <T extends object>(o: T): T =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    return [
      {
        ...policy,
        spec: {
          podSelector: spec.podSelector ?? {},
          policyTypes: effective,
          ingress: ingress.map((r) => strip({ from: r.peers, ports: r.ports })),
          egress: effective.includes('Egress')
            ? egress.map((r) => strip({ to: r.peers, ports: r.ports }))
            : [],
        },
      },
    ];
  });
  return {
    ...cluster,
    policies,
    clusterPolicies: faultedTiers(cluster.clusterPolicies ?? [], kinds),
  };
}

type Spec = Record<string, unknown> & {
  tier?: unknown;
  priority?: unknown;
  ingress?: Record<string, unknown>[];
  egress?: Record<string, unknown>[];
};

/**
 * The cluster-scoped policies as a CNI that gets the tiers wrong reads them:
 * - pass-as-accept: a Pass rule accepts (the NetworkPolicies are never asked);
 * - ignore-admin-tier: Admin-tier policies are not enforced at all;
 * - priority-reversed: higher priority numbers win inside a tier.
 * (baseline-over-networkpolicy is no rewrite but a tier order: see faultedEvaluator.)
 */
function faultedTiers(
  policies: readonly ClusterPolicyManifest[],
  kinds: ReadonlySet<Fault['kind']>,
): ClusterPolicyManifest[] {
  return policies.flatMap((policy): ClusterPolicyManifest[] => {
    const spec = { ...(policy.spec as Spec) };
    const admin =
      policy.kind === 'AdminNetworkPolicy' ||
      (policy.kind === 'ClusterNetworkPolicy' && spec.tier === 'Admin');
    if (admin && kinds.has('ignore-admin-tier')) return [];
    if (kinds.has('pass-as-accept')) {
      const accept = policy.kind === 'ClusterNetworkPolicy' ? 'Accept' : 'Allow';
      for (const direction of ['ingress', 'egress'] as const)
        if (spec[direction])
          spec[direction] = spec[direction].map((rule) =>
            rule.action === 'Pass' ? { ...rule, action: accept } : rule,
          );
    }
    if (kinds.has('priority-reversed') && typeof spec.priority === 'number')
      spec.priority = 1000 - spec.priority;
    return [{ ...policy, spec }];
  });
}

/**
 * The evaluator a faulty CNI amounts to: the reference evaluator over the rewritten
 * policies, asking the Baseline tier before the NetworkPolicies under
 * baseline-over-networkpolicy (no rewrite of the policies can express that order).
 */
export function faultedEvaluator(cluster: Cluster, faults: readonly Fault[]): ReferenceEvaluator {
  return new ReferenceEvaluator(faultedCluster(cluster, faults), {
    baselineBeforeNetworkPolicies: faults.some((f) => f.kind === 'baseline-over-networkpolicy'),
  });
}
