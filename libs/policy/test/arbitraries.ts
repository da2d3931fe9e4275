/** fast-check generators of small random clusters that exercise every NetworkPolicy feature. */
import fc from 'fast-check';
import {
  validatePolicy,
  withNamespaceNameLabel,
  type Cluster,
  type ContainerPort,
  type LabelSelector,
  type NetworkPolicy,
  type NetworkPolicyPeer,
  type NetworkPolicyPort,
  type Pod,
  type Protocol,
} from '#lumen/policy';

export const NAMESPACES = ['default', 'team-a', 'team-b', 'kube-system'] as const;
export const PORT_NAMES = ['http', 'dns', 'metrics'] as const;
export const PROBE_PORTS = [53, 80, 81, 8080, 8443, 9000] as const;
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

const labelKeys = ['app', 'tier', 'team', 'env'] as const;
const labelValues = ['web', 'db', 'a', 'b'] as const;

const labels = fc.dictionary(fc.constantFrom(...labelKeys), fc.constantFrom(...labelValues), {
  maxKeys: 3,
});

const selector: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom(...labelKeys), fc.constantFrom(...labelValues), {
      maxKeys: 2,
    }),
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: fc.constantFrom<string>(...labelKeys, 'kubernetes.io/metadata.name'),
          operator: fc.constantFrom('In', 'NotIn'),
          values: fc.uniqueArray(fc.constantFrom<string>(...labelValues, ...NAMESPACES), {
            minLength: 1,
            maxLength: 3,
          }),
        }),
        fc.record({
          key: fc.constantFrom(...labelKeys),
          operator: fc.constantFrom('Exists', 'DoesNotExist'),
        }),
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const ipv4 = fc.integer({ min: 0, max: 31 }).map((i) => `10.0.${i >> 3}.${(i & 7) * 32 + 1}`);
const ipv6 = fc.integer({ min: 0, max: 7 }).map((i) => `fd00::${(i * 0x20 + 1).toString(16)}`);

const ipBlock = fc.oneof(
  fc.record({
    cidr: fc.constantFrom('10.0.0.0/16', '10.0.0.0/22', '10.0.1.0/24', '0.0.0.0/0', '10.0.2.64/26'),
    except: fc.uniqueArray(fc.constantFrom('10.0.1.0/24', '10.0.0.32/27', '10.0.2.96/27'), {
      maxLength: 2,
    }),
  }),
  fc.record({
    cidr: fc.constantFrom('fd00::/64', '::/0'),
    except: fc.uniqueArray(fc.constantFrom('fd00::/122', 'fd00::80/121'), { maxLength: 1 }),
  }),
);

const peer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ namespaceSelector: selector, podSelector: selector }),
  fc.record({ ipBlock }),
);

const policyPort: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom(...PROTOCOLS) }, { requiredKeys: [] }),
  fc.record(
    { protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PROBE_PORTS) },
    { requiredKeys: ['port'] },
  ),
  fc
    .record({
      protocol: fc.constantFrom(...PROTOCOLS),
      port: fc.constantFrom(53, 80, 8000),
      span: fc.integer({ min: 0, max: 9000 }),
    })
    .map(({ protocol, port, span }) => ({ protocol, port, endPort: port + span })),
  fc.record(
    { protocol: fc.constantFrom(...PROTOCOLS), port: fc.constantFrom(...PORT_NAMES) },
    { requiredKeys: ['port'] },
  ),
);

const optionalList = <T>(item: fc.Arbitrary<T>): fc.Arbitrary<T[] | undefined> =>
  fc.option(fc.array(item, { maxLength: 3 }), { nil: undefined });

const ingressRule = fc.record(
  { from: optionalList(peer), ports: optionalList(policyPort) },
  { requiredKeys: [] },
);
const egressRule = fc.record(
  { to: optionalList(peer), ports: optionalList(policyPort) },
  { requiredKeys: [] },
);

export function policy(index: number): fc.Arbitrary<NetworkPolicy> {
  return fc
    .record(
      {
        namespace: fc.constantFrom(...NAMESPACES),
        podSelector: selector,
        policyTypes: fc.constantFrom<string[]>(['Ingress'], ['Egress'], ['Ingress', 'Egress']),
        ingress: fc.array(ingressRule, { maxLength: 3 }),
        egress: fc.array(egressRule, { maxLength: 3 }),
      },
      { requiredKeys: ['namespace', 'podSelector'] },
    )
    .map(({ namespace, ...spec }) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `p${index}`, namespace },
      spec,
    }));
}

const containerPort: fc.Arbitrary<ContainerPort> = fc.record(
  {
    name: fc.constantFrom(...PORT_NAMES),
    port: fc.constantFrom(...PROBE_PORTS),
    protocol: fc.constantFrom(...PROTOCOLS),
  },
  { requiredKeys: ['port', 'protocol'] },
);

export function pod(index: number): fc.Arbitrary<Pod> {
  return fc
    .record({
      namespace: fc.constantFrom(...NAMESPACES),
      labels,
      ip: fc.option(fc.oneof({ weight: 4, arbitrary: ipv4 }, { weight: 1, arbitrary: ipv6 }), {
        nil: undefined,
        freq: 10,
      }),
      hostNetwork: fc.boolean().map((b) => b && index % 5 === 4),
      ports: fc.uniqueArray(containerPort, {
        maxLength: 3,
        selector: (p) => `${p.port}/${p.protocol}`,
      }),
    })
    .map(({ ip, ...rest }) => ({ ...rest, name: `pod${index}`, ...(ip ? { ip } : {}) }));
}

/** A random cluster whose policies are all valid. */
export const cluster: fc.Arbitrary<Cluster> = fc
  .record({
    namespaceLabels: fc.array(labels, {
      minLength: NAMESPACES.length,
      maxLength: NAMESPACES.length,
    }),
    podCount: fc.integer({ min: 1, max: 7 }),
    policyCount: fc.integer({ min: 0, max: 5 }),
  })
  .chain(({ namespaceLabels, podCount, policyCount }) =>
    fc.record({
      namespaces: fc.constant(
        NAMESPACES.map((n, i) => withNamespaceNameLabel(n, namespaceLabels[i])),
      ),
      pods: fc.tuple(...Array.from({ length: podCount }, (_, i) => pod(i))),
      policies: fc.tuple(...Array.from({ length: policyCount }, (_, i) => policy(i))),
    }),
  )
  .map((c) => ({ ...c, policies: c.policies.filter((p) => validatePolicy(p).ok) }));

/** One change to a cluster, as a watch delivers it. */
export type ClusterChange =
  | { readonly kind: 'setPod'; readonly pod: Pod }
  | { readonly kind: 'deletePod'; readonly name: string }
  | {
      readonly kind: 'setNamespace';
      readonly name: string;
      readonly labels: Record<string, string>;
    }
  | { readonly kind: 'deleteNamespace'; readonly name: string }
  | { readonly kind: 'setPolicy'; readonly policy: NetworkPolicy }
  | { readonly kind: 'deletePolicy'; readonly name: string };

/**
 * Sequences of changes over a few pod and policy names, so that pods are replaced (new
 * labels: a new class), moved between namespaces and deleted, namespaces relabelled and
 * deleted, and policies replaced and deleted.
 */
export const clusterChanges: fc.Arbitrary<ClusterChange[]> = fc.array(
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .nat(7)
        .chain((i) => pod(i))
        .map((p) => ({ kind: 'setPod' as const, pod: p })),
    },
    {
      weight: 1,
      arbitrary: fc.nat(7).map((i) => ({ kind: 'deletePod' as const, name: `pod${i}` })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ name: fc.constantFrom(...NAMESPACES), labels })
        .map(({ name, labels: l }) => ({ kind: 'setNamespace' as const, name, labels: l })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...NAMESPACES)
        .map((name) => ({ kind: 'deleteNamespace' as const, name })),
    },
    {
      weight: 2,
      arbitrary: fc
        .nat(5)
        .chain((i) => policy(i))
        .filter((p) => validatePolicy(p).ok)
        .map((p) => ({ kind: 'setPolicy' as const, policy: p })),
    },
    {
      weight: 1,
      arbitrary: fc.nat(5).map((i) => ({ kind: 'deletePolicy' as const, name: `p${i}` })),
    },
  ),
  { minLength: 1, maxLength: 8 },
);
