/** Compact builders for hand-written test clusters. */
import {
  withNamespaceNameLabel,
  type Cluster,
  type ContainerPort,
  type Labels,
  type NetworkPolicy,
  type NetworkPolicySpec,
  type Pod,
} from '#lumen/policy';

export function pod(
  ref: string,
  labels: Labels = {},
  extra: { ip?: string; ports?: ContainerPort[]; hostNetwork?: boolean } = {},
): Pod {
  const [namespace = '', name = ''] = ref.split('/');
  return {
    namespace,
    name,
    labels,
    hostNetwork: extra.hostNetwork ?? false,
    ports: extra.ports ?? [],
    ...(extra.ip ? { ip: extra.ip } : {}),
  };
}

export function policy(
  ref: string,
  spec: NetworkPolicySpec | Record<string, unknown>,
): NetworkPolicy {
  const [namespace = '', name = ''] = ref.split('/');
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: spec,
  };
}

export function cluster(
  pods: Pod[],
  policies: NetworkPolicy[],
  namespaceLabels: Record<string, Labels> = {},
): Cluster {
  const names = new Set([...pods.map((p) => p.namespace), ...Object.keys(namespaceLabels)]);
  return {
    namespaces: [...names].map((n) => withNamespaceNameLabel(n, namespaceLabels[n])),
    pods,
    policies,
  };
}
