import { freePort } from '#lumen/host';
import { resourceByKind, type KubeObject } from '../api/resources.js';
import type { ObjectStore } from '../api/store.js';

/** Annotation where the lab writes a host-run pod's ports: `{"<containerPort>": hostPort}`. */
export const HOST_PORTS_ANNOTATION = 'lab.lumen.dev/host-ports';

/**
 * The host ports of pods whose processes run in the host's network namespace (Lumen's and
 * NATS's images): each container port of such a pod gets a free host port, the same for
 * the pod's name while it exists, so a client resolving a Service before the pod starts
 * and the pod itself agree.
 */
export class HostPorts {
  private readonly ports = new Map<string, number>();

  async of(namespace: string, pod: string, containerPort: number): Promise<number> {
    const key = `${namespace}/${pod}/${containerPort}`;
    let port = this.ports.get(key);
    if (port === undefined) {
      port = await freePort();
      this.ports.set(key, port);
    }
    return port;
  }

  /** The pod's ports, for its annotation. */
  ofPod(namespace: string, pod: string): Record<string, number> {
    const prefix = `${namespace}/${pod}/`;
    return Object.fromEntries(
      [...this.ports.entries()]
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, port]) => [key.slice(prefix.length), port]),
    );
  }

  release(namespace: string, pod: string): void {
    for (const key of [...this.ports.keys()])
      if (key.startsWith(`${namespace}/${pod}/`)) this.ports.delete(key);
  }
}

interface ServicePort {
  readonly port: number;
  readonly targetPort?: number | string;
}

interface PodPorts {
  readonly containers?: readonly {
    readonly ports?: readonly { name?: string; containerPort: number }[];
  }[];
}

const HOST_AND_PORT =
  /(?<=^|[/@,])([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*):(\d{1,5})(?=$|[/,?])/g;

/**
 * The lab has no cluster DNS and no kube-proxy: a host-run pod that names a Service
 * (`lumen-nats:4222`, `lumen-nats.lumen.svc.cluster.local:4222`) in its environment gets
 * the address of one of the Service's pods instead, on that pod's host port:
 * `127.0.0.1:<port>`. A name that is no Service, or a Service without pods, stays as it is.
 */
export async function serviceAddresses(
  env: Readonly<Record<string, string>>,
  namespace: string,
  store: ObjectStore,
  ports: HostPorts,
): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    let out = value;
    for (const match of [...value.matchAll(HOST_AND_PORT)]) {
      const [whole, host = '', , , , port = ''] = match;
      const address = await serviceAddress(host, Number(port), namespace, store, ports);
      if (address) out = out.replace(whole, address);
    }
    resolved[name] = out;
  }
  return resolved;
}

async function serviceAddress(
  host: string,
  port: number,
  podNamespace: string,
  store: ObjectStore,
  ports: HostPorts,
): Promise<string | undefined> {
  const services = resourceByKind('Service');
  const [name = '', second, third] = host.split('.');
  if (!services || (third !== undefined && third !== 'svc')) return undefined;
  const namespace = second ?? podNamespace;
  const service = store.find(services, namespace, name);
  const spec = (service?.['spec'] ?? {}) as {
    selector?: Record<string, string>;
    ports?: ServicePort[];
  };
  const servicePort = spec.ports?.find((p) => p.port === port);
  if (!servicePort || !spec.selector) return undefined;
  const backend = backendOf(spec.selector, namespace, store);
  const containerPort = backend && containerPortOf(backend, servicePort.targetPort ?? port);
  if (!backend || containerPort === undefined) return undefined;
  return `127.0.0.1:${await ports.of(namespace, backend.metadata.name, containerPort)}`;
}

/** The Service's first pod by name, as a Service would pick one of them. */
function backendOf(
  selector: Record<string, string>,
  namespace: string,
  store: ObjectStore,
): KubeObject | undefined {
  const pods = resourceByKind('Pod');
  if (!pods) return undefined;
  const wanted = Object.entries(selector);
  return store
    .list(pods, namespace)
    .items.filter((pod) => wanted.every(([k, v]) => pod.metadata.labels?.[k] === v))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
}

/** A targetPort, by number or by the name of a container port. */
function containerPortOf(pod: KubeObject, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  return ((pod['spec'] ?? {}) as PodPorts).containers
    ?.flatMap((c) => c.ports ?? [])
    .find((p) => p.name === target)?.containerPort;
}

/** A nats-server configuration's ports moved to the pod's host ports: `port`, `http_port`. */
export async function natsConfigOnHost(
  text: string,
  hostPort: (containerPort: number) => Promise<number>,
  hostPaths: ReadonlyMap<string, string>,
): Promise<string> {
  let out = text;
  const mounts = [...hostPaths.entries()].sort((a, b) => b[0].length - a[0].length);
  for (const [mountPath, hostPath] of mounts)
    out = out.replace(
      new RegExp(
        `(?<=[\\s"':=])${mountPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[/\\s"',]|$)`,
        'gm',
      ),
      hostPath,
    );
  const portLines = [...out.matchAll(/^(\s*)(port|http_port)(\s*[:=]\s*)(\d+)\s*$/gm)];
  for (const [whole, indent = '', key = '', separator = '', port = ''] of portLines)
    out = out.replace(whole, `${indent}${key}${separator}${await hostPort(Number(port))}`);
  return out;
}
