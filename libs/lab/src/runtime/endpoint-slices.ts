import { resourceByKind, type KubeObject, type ResourceType } from '../api/resources.js';
import type { ObjectStore } from '../api/store.js';
import type { RunningPod } from './kubelet.js';

/** The label that ties an EndpointSlice to its Service, as the real controller sets it. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const MANAGED_BY = 'endpointslice-controller.lumen.dev';

interface ServicePortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
}

interface ContainerPortSpec {
  name?: string;
  containerPort: number;
  protocol?: string;
}

/** A Service's ports on one pod: a named target port is the pod's containerPort of that name. */
function resolvedPorts(
  ports: readonly ServicePortSpec[],
  pod: KubeObject,
): { name: string; port: number; protocol: string }[] {
  const containers = (
    (pod.spec as { containers?: { ports?: ContainerPortSpec[] }[] } | undefined)?.containers ?? []
  ).flatMap((c) => c.ports ?? []);
  return ports.flatMap((p) => {
    const protocol = p.protocol ?? 'TCP';
    const target = p.targetPort ?? p.port;
    const port =
      typeof target === 'number'
        ? target
        : containers.find((c) => c.name === target && (c.protocol ?? 'TCP') === protocol)
            ?.containerPort;
    return port === undefined ? [] : [{ name: p.name ?? '', port, protocol }];
  });
}

/** One Service's EndpointSlices: one per IP family and set of resolved ports. */
export function slicesFor(
  service: KubeObject,
  pods: readonly KubeObject[],
  running: ReadonlyMap<string, RunningPod>,
): KubeObject[] {
  const spec = (service.spec ?? {}) as {
    selector?: Record<string, string> | null;
    ports?: ServicePortSpec[];
  };
  const selector = spec.selector;
  if (!selector || Object.keys(selector).length === 0) return [];
  const groups = new Map<
    string,
    {
      family: 'IPv4' | 'IPv6';
      ports: { name: string; port: number; protocol: string }[];
      endpoints: Record<string, unknown>[];
    }
  >();
  for (const pod of pods) {
    if (pod.metadata.namespace !== service.metadata.namespace) continue;
    const labels = pod.metadata.labels ?? {};
    if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
    const live = running.get(pod.metadata.uid ?? '');
    // Ready: the kubelet runs it and it has its address.
    if (!live?.ip) continue;
    const ports = resolvedPorts(spec.ports ?? [], pod);
    if (ports.length === 0) continue;
    const family = live.ip.includes(':') ? 'IPv6' : 'IPv4';
    const key = `${family} ${JSON.stringify(ports)}`;
    const group = groups.get(key) ?? { family, ports, endpoints: [] };
    group.endpoints.push({
      addresses: [live.ip],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: live.node,
      targetRef: {
        kind: 'Pod',
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        uid: pod.metadata.uid,
      },
    });
    groups.set(key, group);
  }
  return [...groups.values()].map((group, i) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service.metadata.name}-lab${i}`,
      namespace: service.metadata.namespace,
      labels: {
        [SERVICE_NAME_LABEL]: service.metadata.name,
        'endpointslice.kubernetes.io/managed-by': MANAGED_BY,
      },
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: service.metadata.name,
          uid: service.metadata.uid,
        },
      ],
    },
    addressType: group.family,
    endpoints: group.endpoints,
    ports: group.ports,
  }));
}

function type(kind: string): ResourceType {
  const found = resourceByKind(kind);
  if (!found) throw new Error(`${kind} is not served`);
  return found;
}

/**
 * The lab's EndpointSlice controller: each Service with a selector gets slices listing
 * the ready pods it selects (running, with their address) on the resolved target ports, kept
 * in step as pods and Services come and go. Slices it did not write are left alone.
 */
export class EndpointSliceController {
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly pods: () => readonly RunningPod[],
    private readonly log: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  start(): void {
    const watched = new Set(['Pod', 'Service'].map(type));
    this.unsubscribe = this.store.subscribe((event) => {
      if (watched.has(event.resource)) this.changed();
    });
    this.changed();
  }

  stop(): void {
    this.unsubscribe?.();
    clearTimeout(this.timer);
  }

  /** Something slices depend on changed: a pod started or stopped, an object changed. */
  changed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      try {
        this.reconcile();
      } catch (error) {
        this.log('endpoint slices failed', { error: String(error) });
      }
    }, 10);
  }

  reconcile(): void {
    const slices = type('EndpointSlice');
    const running = new Map(this.pods().map((p) => [p.uid, p]));
    const pods = this.store.list(type('Pod')).items;
    const wanted = new Map<string, KubeObject>();
    for (const service of this.store.list(type('Service')).items)
      for (const slice of slicesFor(service, pods, running))
        wanted.set(`${slice.metadata.namespace ?? ''}/${slice.metadata.name}`, slice);
    for (const existing of this.store.list(slices).items) {
      const key = `${existing.metadata.namespace ?? ''}/${existing.metadata.name}`;
      const managed =
        existing.metadata.labels?.['endpointslice.kubernetes.io/managed-by'] === MANAGED_BY;
      if (!managed) continue;
      const next = wanted.get(key);
      wanted.delete(key);
      if (!next) this.store.delete(slices, existing.metadata.namespace, existing.metadata.name);
      else if (
        JSON.stringify([next['endpoints'], next['ports'], next['addressType']]) !==
        JSON.stringify([existing['endpoints'], existing['ports'], existing['addressType']])
      )
        this.store.update(slices, existing.metadata.namespace, existing.metadata.name, {
          ...next,
          metadata: { ...next.metadata, resourceVersion: existing.metadata.resourceVersion },
        });
    }
    for (const slice of wanted.values()) this.store.create(slices, slice.metadata.namespace, slice);
  }
}
