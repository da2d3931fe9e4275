import type { V1Namespace, V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import type { ClusterPolicyManifest, Namespace, NetworkPolicy, Pod, Protocol } from '#lumen/policy';

export function namespaceFrom(object: V1Namespace): Namespace | undefined {
  const name = object.metadata?.name;
  if (!name) return undefined;
  return {
    name,
    labels: { ...(object.metadata?.labels ?? {}), 'kubernetes.io/metadata.name': name },
  };
}

/** A `lumen run`'s temporary prober is the instrument, not a workload to verify. */
function isRunProber(object: V1Pod): boolean {
  return object.metadata?.labels?.['lumen.dev/run-prober'] !== undefined;
}

/** Policy-relevant facts of a pod: labels, IPs (both of a dual-stack pod), hostNetwork, containerPorts. */
export function podFrom(
  object: V1Pod,
):
  | (Pod & { readonly uid: string; readonly node: string | undefined; readonly running: boolean })
  | undefined {
  const { name, namespace, uid } = object.metadata ?? {};
  if (!name || !namespace || !uid || isRunProber(object)) return undefined;
  const ports = (object.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? []).map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.containerPort,
      protocol: (p.protocol ?? 'TCP') as Protocol,
    })),
  );
  const ip = object.status?.podIP;
  return {
    namespace,
    name,
    uid,
    labels: object.metadata?.labels ?? {},
    hostNetwork: object.spec?.hostNetwork === true,
    ports,
    ...addresses(ip, object.status?.podIPs),
    node: object.spec?.nodeName,
    running: object.status?.phase === 'Running',
  };
}

/**
 * A pod's `ip`, and the `ips` of a dual-stack pod: status.podIPs holds one address per
 * family, podIP first. Nothing before the pod has an address.
 */
function addresses(
  ip: string | undefined,
  podIPs: readonly { ip: string }[] | undefined,
): { ip?: string; ips?: readonly string[] } {
  if (!ip) return {};
  const others = (podIPs ?? []).map((p) => p.ip).filter((a) => a !== '' && a !== ip);
  return others.length > 0 ? { ip, ips: [ip, ...others] } : { ip };
}

/**
 * The policy in its wire shape. client-node's list results are model objects in which an
 * ingress rule's `from` is called `_from`; watch events are plain JSON. Both come out alike.
 */
export function policyFrom(object: V1NetworkPolicy): NetworkPolicy | undefined {
  const { name, namespace } = object.metadata ?? {};
  if (!name || !namespace) return undefined;
  const spec = JSON.parse(JSON.stringify(object.spec ?? {})) as {
    ingress?: Record<string, unknown>[];
  };
  for (const rule of spec.ingress ?? []) {
    if ('_from' in rule) {
      rule.from = rule._from;
      Reflect.deleteProperty(rule, '_from');
    }
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  };
}

/**
 * A ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy as the engine
 * reads it: kind, API version, name and spec, as served (custom objects are plain JSON).
 */
export function clusterPolicyFrom(object: {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
}): ClusterPolicyManifest | undefined {
  const name = object.metadata?.name;
  if (!name || !object.kind) return undefined;
  return {
    ...(object.apiVersion ? { apiVersion: object.apiVersion } : {}),
    kind: object.kind,
    metadata: { name },
    spec: object.spec,
  };
}
