/**
 * A synthetic multi-tenant cluster for benchmarks: tenants' namespaces of a few apps
 * each, with the policy mix platform teams actually run.
 */
import { withNamespaceNameLabel, type Cluster, type NetworkPolicy, type Pod } from '#lumen/policy';

export interface SyntheticSize {
  readonly namespaces: number;
  readonly podsPerNamespace: number;
  readonly policiesPerNamespace: number;
}

const apps = [
  { app: 'frontend', ports: [{ name: 'http', port: 8080, protocol: 'TCP' as const }] },
  {
    app: 'api',
    ports: [
      { name: 'http', port: 8080, protocol: 'TCP' as const },
      { name: 'metrics', port: 9090, protocol: 'TCP' as const },
    ],
  },
  { app: 'db', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' as const }] },
  { app: 'cache', ports: [{ name: 'redis', port: 6379, protocol: 'TCP' as const }] },
  { app: 'worker', ports: [{ name: 'metrics', port: 9090, protocol: 'TCP' as const }] },
];

function ip(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function policy(namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { namespace, name },
    spec,
  };
}

/** The policy kinds, in the order a namespace gets them. */
const policyKinds: ((ns: string, tenant: string, i: number) => NetworkPolicy)[] = [
  (ns) => policy(ns, 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  (ns) =>
    policy(ns, 'allow-dns', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
      ],
    }),
  (ns) =>
    policy(ns, 'frontend-from-ingress', {
      podSelector: { matchLabels: { app: 'frontend' } },
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { role: 'ingress' } } }],
          ports: [{ port: 'http' }],
        },
      ],
    }),
  (ns) =>
    policy(ns, 'db-from-api', {
      podSelector: { matchLabels: { app: 'db' } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 'pg' }] },
      ],
    }),
  (ns, tenant) =>
    policy(ns, 'api-from-tenant', {
      podSelector: { matchLabels: { app: 'api' } },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { tenant } },
              podSelector: {
                matchExpressions: [{ key: 'app', operator: 'In', values: ['frontend', 'worker'] }],
              },
            },
          ],
        },
      ],
    }),
  (ns) =>
    policy(ns, 'metrics-from-monitoring', {
      podSelector: {
        matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'worker'] }],
      },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { role: 'monitoring' } },
              podSelector: { matchLabels: { app: 'prometheus' } },
            },
          ],
          ports: [{ port: 'metrics' }],
        },
      ],
    }),
  (ns, _tenant, i) =>
    policy(ns, 'worker-egress-external', {
      podSelector: { matchLabels: { app: 'worker' } },
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } },
            { ipBlock: { cidr: `192.168.${i % 256}.0/24` } },
          ],
          ports: [{ port: 443 }, { port: 8000, endPort: 8100 }],
        },
      ],
    }),
];

export function syntheticCluster(size: SyntheticSize): Cluster {
  const namespaces = [
    withNamespaceNameLabel('kube-system'),
    withNamespaceNameLabel('ingress-nginx', { role: 'ingress' }),
    withNamespaceNameLabel('monitoring', { role: 'monitoring' }),
  ];
  let address = 1;
  const pods: Pod[] = [
    ...[0, 1].map((i) => ({
      namespace: 'kube-system',
      name: `coredns-${i}`,
      labels: { 'k8s-app': 'kube-dns' },
      hostNetwork: false,
      ip: ip(address++),
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' as const },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' as const },
      ],
    })),
    {
      namespace: 'ingress-nginx',
      name: 'controller-0',
      labels: { app: 'ingress-nginx' },
      hostNetwork: false,
      ip: ip(address++),
      ports: [],
    },
    {
      namespace: 'monitoring',
      name: 'prometheus-0',
      labels: { app: 'prometheus' },
      hostNetwork: false,
      ip: ip(address++),
      ports: [],
    },
    {
      namespace: 'kube-system',
      name: 'node-exporter',
      labels: { app: 'node-exporter' },
      hostNetwork: true,
      ip: '192.0.2.1',
      ports: [{ name: 'metrics', port: 9100, protocol: 'TCP' as const }],
    },
  ];
  const policies: NetworkPolicy[] = [];
  for (let n = 0; n < size.namespaces; n++) {
    const tenant = `t${n % Math.max(1, Math.floor(size.namespaces / 10))}`;
    const name = `${tenant}-ns${n}`;
    namespaces.push(
      withNamespaceNameLabel(name, { tenant, env: ['prod', 'staging', 'dev'][n % 3] ?? 'dev' }),
    );
    for (let p = 0; p < size.podsPerNamespace; p++) {
      const spec = apps[p % apps.length]!;
      pods.push({
        namespace: name,
        name: `${spec.app}-${p}`,
        labels: { app: spec.app, 'pod-template-hash': 'abc123' },
        hostNetwork: false,
        ip: ip(address++),
        ports: spec.ports,
      });
    }
    for (let k = 0; k < size.policiesPerNamespace; k++) {
      const kind = policyKinds[(n + k) % policyKinds.length]!;
      policies.push(kind(name, tenant, n));
    }
  }
  return { namespaces, pods, policies };
}
