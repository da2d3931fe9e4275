import { CLUSTER_POLICY_KINDS, podKey, type ClusterPolicyKind, type Pod } from '#lumen/policy';
import type { Scenario } from '#lumen/scenario';
import { POD_IP_ANNOTATION } from './runtime/kubelet.js';

export type ManifestObject = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
};

/** The Kubernetes objects a scenario describes, in the order they must be created. */
export function scenarioObjects(scenario: Scenario): ManifestObject[] {
  const { namespaces, pods, policies, clusterPolicies = [] } = scenario.cluster;
  return [
    ...namespaces.map((n) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: n.name,
        labels: Object.fromEntries(
          Object.entries(n.labels).filter(([k]) => k !== 'kubernetes.io/metadata.name'),
        ),
      },
    })),
    ...pods.map(podManifest),
    ...policies.map((policy) => ({
      ...policy,
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
    })),
    ...scenario.services.map((service) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: service.name, namespace: service.namespace },
      spec: {
        ...(service.selector ? { selector: { ...service.selector } } : {}),
        ...(service.headless
          ? { clusterIP: 'None' }
          : service.clusterIPs[0]
            ? { clusterIP: service.clusterIPs[0] }
            : {}),
        ports: service.ports.map((p) => ({
          ...(p.name ? { name: p.name } : {}),
          port: p.port,
          targetPort: p.targetPort,
          protocol: p.protocol,
        })),
      },
    })),
    ...clusterPolicies.map((policy) => {
      const kind = policy.kind as ClusterPolicyKind;
      return {
        apiVersion: CLUSTER_POLICY_KINDS[kind],
        kind,
        metadata: { name: policy.metadata.name },
        spec: policy.spec,
      };
    }),
  ];
}

/** A pod as the lab creates it: its labels, containerPorts and (as an annotation) its IPs. */
export function podManifest(p: Pod): ManifestObject & { spec: Record<string, unknown> } {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      labels: { ...p.labels },
      ...(p.ips && p.ips.length > 0
        ? { annotations: { [POD_IP_ANNOTATION]: p.ips.join(',') } }
        : p.ip
          ? { annotations: { [POD_IP_ANNOTATION]: p.ip } }
          : {}),
    },
    spec: {
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      containers: [
        {
          name: 'app',
          image: 'lumen-lab',
          ports: p.ports.map((port) => ({
            ...(port.name ? { name: port.name } : {}),
            containerPort: port.port,
            protocol: port.protocol,
          })),
        },
      ],
    },
  };
}

const ORDER = [
  'Namespace',
  'ConfigMap',
  'Pod',
  'NetworkPolicy',
  'ClusterNetworkPolicy',
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
];

/** Namespaces first, so that what lives in them can be created. */
export function creationOrder(objects: readonly ManifestObject[]): ManifestObject[] {
  const rank = (o: ManifestObject): number => {
    const index = ORDER.indexOf(o.kind);
    return index < 0 ? ORDER.length : index;
  };
  return [...objects].sort((a, b) => rank(a) - rank(b));
}

export function describe(object: ManifestObject): string {
  const namespace = object.metadata.namespace;
  return `${object.kind} ${namespace ? podKey({ namespace, name: object.metadata.name }) : object.metadata.name}`;
}
