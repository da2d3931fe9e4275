import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Protocol, ServiceFrontend } from '#lumen/policy';

/** A Service's facts the planner needs: its addresses and ports. */
export interface WatchedService {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIPs: readonly string[];
  readonly ports: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol: Protocol;
  }[];
}

/** An EndpointSlice's ready pod endpoints, per port name, for the Service it belongs to. */
export interface WatchedEndpointSlice {
  readonly namespace: string;
  readonly service: string;
  readonly ports: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol: Protocol;
  }[];
  /** Names of the ready pods it lists (endpoints of other kinds are not pods to plan for). */
  readonly pods: readonly string[];
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const isProtocol = (p: string): p is Protocol => p === 'TCP' || p === 'UDP' || p === 'SCTP';

/**
 * A Service with a ClusterIP of its own; undefined for a headless one (clusterIP None: a
 * client connects to the pods, which the pod-level cases already probe) and for an
 * ExternalName Service, which has no backends in the cluster.
 */
export function serviceFrom(object: V1Service): WatchedService | undefined {
  const { name, namespace } = object.metadata ?? {};
  const spec = object.spec;
  if (!name || !namespace || !spec || spec.type === 'ExternalName' || spec.clusterIP === 'None')
    return undefined;
  const clusterIPs = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter(
    (ip) => ip !== '' && ip !== 'None',
  );
  return {
    namespace,
    name,
    clusterIPs,
    ports: (spec.ports ?? []).flatMap((p) => {
      const protocol = p.protocol ?? 'TCP';
      return isProtocol(protocol) ? [{ name: p.name ?? '', port: p.port, protocol }] : [];
    }),
  };
}

/**
 * The ready pods of an EndpointSlice (conditions.ready unset counts as ready, as the API
 * documents), under the Service named by its kubernetes.io/service-name label.
 */
export function endpointSliceFrom(object: V1EndpointSlice): WatchedEndpointSlice | undefined {
  const { name, namespace } = object.metadata ?? {};
  const service = object.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (!name || !namespace || !service) return undefined;
  return {
    namespace,
    service,
    ports: (object.ports ?? []).flatMap((p) => {
      const protocol = p.protocol ?? 'TCP';
      return p.port !== undefined && isProtocol(protocol)
        ? [{ name: p.name ?? '', port: p.port, protocol }]
        : [];
    }),
    pods: (object.endpoints ?? []).flatMap((e) =>
      e.conditions?.ready !== false &&
      e.targetRef?.kind === 'Pod' &&
      e.targetRef.name &&
      (e.targetRef.namespace ?? namespace) === namespace
        ? [e.targetRef.name]
        : [],
    ),
  };
}

/**
 * Each Service port with the ready pods its EndpointSlices list for it: a slice's port is
 * matched by name (a Service with one port may leave it unnamed), and gives the number the
 * backends of that slice are reached on. A port without a ClusterIP or a backend is left out.
 */
export function serviceFrontends(
  services: Iterable<WatchedService>,
  slices: Iterable<WatchedEndpointSlice>,
): ServiceFrontend[] {
  const slicesOf = new Map<string, WatchedEndpointSlice[]>();
  for (const slice of slices) {
    const key = `${slice.namespace}/${slice.service}`;
    slicesOf.set(key, [...(slicesOf.get(key) ?? []), slice]);
  }
  const frontends: ServiceFrontend[] = [];
  for (const service of services) {
    if (service.clusterIPs.length === 0) continue;
    const own = slicesOf.get(`${service.namespace}/${service.name}`) ?? [];
    for (const port of service.ports) {
      const seen = new Set<string>();
      const backends = own.flatMap((slice) => {
        const target = slice.ports.find(
          (p) => p.name === port.name && p.protocol === port.protocol,
        );
        if (!target) return [];
        return slice.pods.flatMap((pod) => {
          if (seen.has(pod)) return [];
          seen.add(pod);
          return [{ pod: { namespace: service.namespace, name: pod }, port: target.port }];
        });
      });
      if (backends.length === 0) continue;
      frontends.push({
        namespace: service.namespace,
        name: service.name,
        clusterIPs: service.clusterIPs,
        port: port.port,
        protocol: port.protocol,
        backends,
      });
    }
  }
  return frontends;
}
